import { fieldPresent, type Layout, type LayoutField, type ScalarType, type ValueOf } from '../../grammar/layout.js';
import type { StreamReader } from '../io/reader.js';
import { expectMismatch } from './expect.js';
import { intField } from './fields.js';
import type { FieldValue, LayoutValue } from './types.js';

/**
 * Read a layout from a stream. `end` (absolute offset) bounds `repeat-to-end` fields and
 * is checked by the caller. Integer-valued `length`/`count` references must name fields
 * read earlier in the same layout.
 */
export function readLayout<L extends Layout>(
  r: StreamReader,
  layout: L,
  what: string,
  end?: number,
  context?: LayoutValue,
): ValueOf<L> {
  return readFields(r, layout, what, end, context) as ValueOf<L>;
}

// The untyped walk behind readLayout: it builds the object field by field, so its static type
// is the generic dictionary; readLayout states, once, that the result is the layout's ValueOf.
function readFields(r: StreamReader, layout: Layout, what: string, end?: number, context?: LayoutValue): LayoutValue {
  const out: LayoutValue = {};
  // `context`: fields read before (a flag byte peeked by the caller) that conditions refer to
  const scope: LayoutValue = context ? { ...context } : out;
  for (const f of layout) {
    if (!fieldPresent(f, scope)) continue;
    const v = readField(r, f, scope, what, end);
    out[f.name] = v;
    if (scope !== out) scope[f.name] = v;
  }
  return out;
}

/** Largest `bytes` field read into memory; a larger length field is treated as a lie. */
export const MAX_LAYOUT_BYTES = 1 << 26;
/** Largest element count of a counted list (capabilities: QEMU validates two). */
export const MAX_REPEAT = 1 << 16;

function refNumber(v: LayoutValue, ref: number | string | undefined, f: LayoutField): number {
  if (typeof ref === 'number') return ref;
  if (ref === undefined) throw new Error(`grammar: field ${f.name} has no length/count`);
  return intField(v, ref);
}

function readField(r: StreamReader, f: LayoutField, sofar: LayoutValue, what: string, end?: number): FieldValue {
  const label = `${what} ${f.name}`;
  const at = r.offset;
  let v: FieldValue;
  switch (f.type) {
    case 'u8':
    case 'be16':
    case 'be32':
    case 'be64':
    case 'be64n':
    case 'le32':
    case 'le64':
      v = readScalar(r, f.type, label);
      break;
    case 'counted':
      v = r.counted(label);
      break;
    case 'bytes': {
      const n = refNumber(sofar, f.length, f) * (f.scale ?? 1);
      if (n > MAX_LAYOUT_BYTES) throw r.error('limit', `${label} of at most ${MAX_LAYOUT_BYTES} bytes`, `${n}`, at);
      v = r.copyBytes(n, label);
      break;
    }
    case 'repeat': {
      const n = refNumber(sofar, f.count, f);
      if (n > MAX_REPEAT) throw r.error('limit', `${label}: at most ${MAX_REPEAT} entries`, `${n}`, at);
      const items: LayoutValue[] = [];
      for (let i = 0; i < n; i++) items.push(readFields(r, f.element ?? [], `${label}[${i}]`, end));
      v = items;
      break;
    }
    case 'repeat-to-end': {
      if (end === undefined) throw new Error(`grammar: ${f.name} needs a bounded payload`);
      const items: LayoutValue[] = [];
      while (r.offset < end) items.push(readFields(r, f.element ?? [], `${label}[${items.length}]`, end));
      v = items;
      break;
    }
  }
  const bad = expectMismatch(f, label, v);
  if (bad) throw r.error(bad.code, bad.expected, bad.found, at);
  return v;
}

/** One fixed-width integer, by its grammar type. */
export function readScalar(r: StreamReader, t: ScalarType, label: string): number | bigint {
  switch (t) {
    case 'u8':
      return r.u8(label);
    case 'be16':
      return r.be16(label);
    case 'be32':
      return r.be32(label);
    case 'be64':
      return r.be64(label);
    case 'be64n':
      return r.be64Number(label);
    case 'le32':
      return r.le32(label);
    case 'le64':
      return r.le64(label);
  }
}
