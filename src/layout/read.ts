import { fieldPresent, type Layout, type LayoutField } from '../../grammar/layout.js';
import type { StreamReader } from '../io/reader.js';
import type { FieldValue, LayoutValue } from './types.js';

/**
 * Read a layout from a stream. `end` (absolute offset) bounds `repeat-to-end` fields and
 * is checked by the caller. Integer-valued `length`/`count` references must name fields
 * read earlier in the same layout.
 */
export function readLayout(r: StreamReader, layout: Layout, what: string, end?: number, context?: LayoutValue): LayoutValue {
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
  const x = v[ref];
  if (typeof x === 'number') return x;
  if (typeof x === 'bigint') return Number(x);
  throw new Error(`grammar: field ${f.name} refers to non-integer ${ref}`);
}

function readField(r: StreamReader, f: LayoutField, sofar: LayoutValue, what: string, end?: number): FieldValue {
  const label = `${what} ${f.name}`;
  const at = r.offset;
  let v: FieldValue;
  switch (f.type) {
    case 'u8': v = r.u8(label); break;
    case 'be16': v = r.be16(label); break;
    case 'be32': v = r.be32(label); break;
    case 'be64': v = r.be64(label); break;
    case 'be64n': v = r.be64Number(label); break;
    case 'le64': v = r.le64(label); break;
    case 'counted': v = r.counted(label); break;
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
      for (let i = 0; i < n; i++) items.push(readLayout(r, f.element ?? [], `${label}[${i}]`, end));
      v = items;
      break;
    }
    case 'repeat-to-end': {
      if (end === undefined) throw new Error(`grammar: ${f.name} needs a bounded payload`);
      const items: LayoutValue[] = [];
      while (r.offset < end) items.push(readLayout(r, f.element ?? [], `${label}[${items.length}]`, end));
      v = items;
      break;
    }
  }
  if (f.expect !== undefined && v !== f.expect) {
    throw r.error('bad-value', `${label} = ${f.expect}`, String(v), at);
  }
  return v;
}
