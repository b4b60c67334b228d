/**
 * The vocabulary in which grammar/ describes wire records.
 *
 * A Layout is an ordered list of fields. The same table drives the binary-parser
 * decoder (src/layout/parser.ts), the streaming reader (src/layout/read.ts) and the
 * writer (src/layout/write.ts), so the two directions cannot drift apart.
 */

/** Wire types. Integers are big-endian unless the name says `le`. */
export type FieldType =
  | 'u8'
  | 'be16'
  | 'be32'
  | 'be64'
  /** be64 that must fit a JS number (lengths, offsets); larger values are stream errors */
  | 'be64n'
  | 'le64'
  /** u8 length + that many bytes, no NUL (QEMU's counted string); decoded as latin1 */
  | 'counted'
  /** raw bytes; `length` is a constant or the name of an earlier integer field */
  | 'bytes'
  /** a nested layout repeated until the enclosing payload ends */
  | 'repeat-to-end'
  /** a nested layout repeated `count` times (`count` names an earlier integer field) */
  | 'repeat';

export interface LayoutField {
  readonly name: string;
  readonly type: FieldType;
  /** for `bytes`: a constant byte count, or the name of an earlier field holding it */
  readonly length?: number | string;
  /** for `repeat`: name of the earlier field holding the element count */
  readonly count?: string;
  /** for `repeat` / `repeat-to-end` */
  readonly element?: Layout;
  /** for `bytes` with a field-named length: the length is that field times `scale` */
  readonly scale?: number;
  /** present only when every condition holds (flag bits of an earlier integer field) */
  readonly when?: readonly FieldCondition[];
  /** the value QEMU always writes here; readers report a different value as an error */
  readonly expect?: number;
  /** human description, shown in error messages */
  readonly doc?: string;
}

export interface FieldCondition {
  readonly field: string;
  readonly mask: number;
  /** true: all mask bits set; false: none of them */
  readonly set: boolean;
}

export type Layout = readonly LayoutField[];

/** Whether a conditional field is present, given the integer fields decoded so far. */
export function fieldPresent(f: LayoutField, sofar: { readonly [name: string]: unknown }): boolean {
  if (!f.when) return true;
  for (const c of f.when) {
    const v = sofar[c.field];
    const bits = typeof v === 'bigint' ? Number(v & BigInt(c.mask)) : typeof v === 'number' ? v & c.mask : 0;
    if (c.set ? bits !== c.mask : bits !== 0) return false;
  }
  return true;
}

/** Size in bytes of a layout made only of fixed-size fields, or undefined. */
export function fixedSize(layout: Layout): number | undefined {
  let n = 0;
  for (const f of layout) {
    if (f.when) return undefined;
    switch (f.type) {
      case 'u8': n += 1; break;
      case 'be16': n += 2; break;
      case 'be32': n += 4; break;
      case 'be64': case 'be64n': case 'le64': n += 8; break;
      case 'bytes':
        if (typeof f.length !== 'number') return undefined;
        n += f.length;
        break;
      default:
        return undefined;
    }
  }
  return n;
}
