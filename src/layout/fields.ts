import type { FieldValue, LayoutValue } from '../../grammar/layout.js';

// Accessors for values of layouts chosen from a table at run time (a command's payload, a
// builtin section's item, a configuration subsection): the static type is the dictionary, so
// the field's type is checked here instead of being asserted. A mismatch is a grammar bug.

function missing(name: string, want: string, v: FieldValue | undefined): Error {
  return new Error(`grammar: field ${name} is not ${want} (${v === undefined ? 'absent' : typeof v})`);
}

/** An integer field; a be64 is converted (callers use this for values below 2^53). */
export function intField(v: LayoutValue, name: string): number {
  const x = v[name];
  if (typeof x === 'number') return x;
  if (typeof x === 'bigint') return Number(x);
  throw missing(name, 'an integer', x);
}

export function bigintField(v: LayoutValue, name: string): bigint {
  const x = v[name];
  if (typeof x === 'bigint') return x;
  if (typeof x === 'number') return BigInt(x);
  throw missing(name, 'an integer', x);
}

export function stringField(v: LayoutValue, name: string): string {
  const x = v[name];
  if (typeof x === 'string') return x;
  throw missing(name, 'a string', x);
}

export function listField(v: LayoutValue, name: string): LayoutValue[] {
  const x = v[name];
  if (Array.isArray(x)) return x;
  throw missing(name, 'a list', x);
}

/** An integer field when the value has it (a message whose payload may be absent), else undefined. */
export function optionalIntField(v: LayoutValue | undefined, name: string): number | undefined {
  const x = v?.[name];
  return typeof x === 'number' ? x : typeof x === 'bigint' ? Number(x) : undefined;
}
