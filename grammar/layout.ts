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
  /** little-endian: libvirt's native-endian header as x86 writes it */
  | 'le32'
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

/** Fixed-width integer types and their width in bytes: the one width table every interpreter uses. */
export const SCALAR_WIDTH = { u8: 1, be16: 2, be32: 4, be64: 8, be64n: 8, le32: 4, le64: 8 } as const;
export type ScalarType = keyof typeof SCALAR_WIDTH;

export function isScalarType(t: FieldType): t is ScalarType {
  return Object.hasOwn(SCALAR_WIDTH, t);
}

/** Size in bytes of a layout made only of fixed-size fields, or undefined. */
export function fixedSize(layout: Layout): number | undefined {
  let n = 0;
  for (const f of layout) {
    if (f.when) return undefined;
    if (isScalarType(f.type)) n += SCALAR_WIDTH[f.type];
    else if (f.type === 'bytes' && typeof f.length === 'number') n += f.length;
    else return undefined;
  }
  return n;
}

/**
 * Byte offset of a field from the start of a layout whose fields before it are fixed-size
 * (where diagnostics point inside a packet). Throws for a name the layout lacks.
 */
export function fieldOffset(layout: Layout, name: string): number {
  let n = 0;
  for (const f of layout) {
    if (f.name === name) return n;
    const size = fixedSize([f]);
    if (size === undefined) break;
    n += size;
  }
  throw new Error(`grammar: no fixed-offset field ${name}`);
}

// ---- The value type of a layout, derived from its declaration ----
// A layout declared `as const satisfies Layout` keeps its field names and types, so
// `ValueOf<typeof FileHeader>` is `{ magic: number; version: number }`: readers return it and
// writers take it, and no value read from a layout needs a cast.

/** 64-bit fields are BigInt (VFIO tags and guest addresses exceed 2^53); be64n is checked to fit. */
type ScalarValue<T extends FieldType> = T extends 'be64' | 'le64'
  ? bigint
  : T extends ScalarType
    ? number
    : T extends 'counted'
      ? string
      : T extends 'bytes'
        ? Uint8Array
        : never;

type FieldValueOf<F extends LayoutField> = F extends { readonly element: infer E extends Layout }
  ? ValueOf<E>[]
  : ScalarValue<F['type']>;

type FieldsOf<L extends Layout> = L[number];

/** Decoded value of one field of a layout known only at run time (a command table's payload). */
export type FieldValue = number | bigint | string | Uint8Array | LayoutValue[];
/** The decoded fields of a record layout, by field name. */
export type LayoutValue = { [name: string]: FieldValue };

/**
 * The decoded value of a layout: one property per field; a conditional field may be absent.
 * A layout typed only as `Layout` (chosen from a table at run time) gives the dictionary.
 */
export type ValueOf<L extends Layout> = Layout extends L ? LayoutValue : DeclaredValue<L>;

type DeclaredValue<L extends Layout> = {
  -readonly [
    F in FieldsOf<L> as F extends { readonly when: readonly FieldCondition[] } ? never : F['name']
  ]: FieldValueOf<F>;
} & {
  -readonly [
    F in FieldsOf<L> as F extends { readonly when: readonly FieldCondition[] } ? F['name'] : never
  ]?: FieldValueOf<F>;
};
