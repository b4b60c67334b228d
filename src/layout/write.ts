import {
  fieldPresent,
  isScalarType,
  SCALAR_WIDTH,
  type Layout,
  type LayoutField,
  type ValueOf,
} from '../../grammar/layout.js';
import type { StreamWriter } from '../io/sink.js';
import type { FieldValue, LayoutValue } from './types.js';

/** Write a layout: the mirror of readLayout, driven by the same table. */
export function writeLayout<L extends Layout>(w: StreamWriter, layout: L, value: ValueOf<L>): void {
  writeFields(w, layout, value);
}

function writeFields(w: StreamWriter, layout: Layout, value: LayoutValue): void {
  for (const f of layout) if (fieldPresent(f, value)) writeField(w, f, value[f.name]);
}

function asNumber(v: FieldValue | undefined, f: LayoutField): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v === undefined && f.expect !== undefined) return f.expect;
  throw new TypeError(`layout field ${f.name}: expected a number, got ${typeof v}`);
}

function asBigInt(v: FieldValue | undefined, f: LayoutField): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string') return BigInt(v);
  throw new TypeError(`layout field ${f.name}: expected a 64-bit integer, got ${typeof v}`);
}

function writeField(w: StreamWriter, f: LayoutField, v: FieldValue | undefined): void {
  switch (f.type) {
    case 'u8':
      w.u8(asNumber(v, f));
      break;
    case 'be16':
      w.be16(asNumber(v, f));
      break;
    case 'be32':
      w.be32(asNumber(v, f));
      break;
    case 'be64':
      w.be64(asBigInt(v, f));
      break;
    case 'be64n':
      w.be64Number(asNumber(v, f));
      break;
    case 'le32':
      w.le32(asNumber(v, f));
      break;
    case 'le64':
      w.le64(asBigInt(v, f));
      break;
    case 'counted':
      if (typeof v !== 'string') throw new TypeError(`layout field ${f.name}: expected a string`);
      w.counted(v);
      break;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw new TypeError(`layout field ${f.name}: expected bytes`);
      w.bytes(v);
      break;
    case 'repeat':
    case 'repeat-to-end':
      if (!Array.isArray(v)) throw new TypeError(`layout field ${f.name}: expected a list`);
      for (const item of v) writeFields(w, f.element ?? [], item);
      break;
  }
}

/** Encoded size of a layout value (command payload lengths). */
export function layoutSize<L extends Layout>(layout: L, value: ValueOf<L>): number {
  return sizeOfFields(layout, value);
}

function sizeOfFields(layout: Layout, value: LayoutValue): number {
  let n = 0;
  for (const f of layout) {
    if (!fieldPresent(f, value)) continue;
    const v = value[f.name];
    if (isScalarType(f.type)) {
      n += SCALAR_WIDTH[f.type];
      continue;
    }
    switch (f.type) {
      case 'counted':
        n += 1 + (typeof v === 'string' ? v.length : 0);
        break;
      case 'bytes':
        n += v instanceof Uint8Array ? v.length : 0;
        break;
      case 'repeat':
      case 'repeat-to-end':
        if (Array.isArray(v)) for (const item of v) n += sizeOfFields(f.element ?? [], item);
        break;
    }
  }
  return n;
}
