/**
 * Decoded VMState payloads. The structure (fields, arrays, structs, subsections) comes
 * from the vmdescription; leaves keep their exact wire bytes, so encoding is a plain walk
 * and cannot drift. Formatters (analyze JSON, IR) interpret leaf bytes by `type`.
 */
export interface VmstateNode {
  fields: VmstateField[];
  subsections: VmstateSubsection[];
}

/** A field of a device section: its description and each element's exact wire bytes (or nested struct). */
export interface VmstateField {
  /** field name as in the vmdescription (with its "[k]" suffix for repeated names) */
  name: string;
  /** the vmdescription `type` (VMStateInfo name, "struct", "vstruct", "nullptr", ...) */
  type: string;
  /** element size from the vmdescription */
  size: number;
  /** `array_len` or `index` as the vmdescription gave them */
  arrayLen?: number;
  index?: number;
  elements: VmstateElement[];
}

/** One element of a field: its bytes, a nested struct, or a capability name. */
export type VmstateElement =
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'struct'; node: VmstateNode }
  /** a QEMU counted capability name (configuration) */
  | { kind: 'capability'; name: string };

/** A subsection of a device section (QEMU_VM_SUBSECTION): its name, version and fields. */
export interface VmstateSubsection {
  name: string;
  version: number;
  node: VmstateNode;
}

/** A packed field's elements, back to back, and how many there are. */
export interface PackedElements {
  bytes: Uint8Array;
  count: number;
}

const packedFields = new WeakMap<VmstateField, PackedElements>();

/**
 * A field of `count` elements of `size` plain bytes each (integers, buffers: no struct, no
 * capability), kept as the one run of bytes they are on the wire: `elements` is made the first
 * time it is read, and `packedElements` gives the bytes. analyze, the biggest reader of device
 * values, formats from the bytes. q35-devices-running (11.1) has 50,819 elements in 41 such
 * fields; with a view and an object for each, `analyze` allocated 41 MB for it, without them
 * 32 MB (V8's sampling heap profiler), and took 164 instead of 170 ms (medians of 40
 * alternating runs). The field has a plain field's own properties, in the same order, so a
 * copy of it (structured clone, JSON, deep equality) is a plain field with the same elements.
 */
export function packedVmstateField(
  f: { name: string; type: string; size: number; arrayLen?: number; index?: number },
  bytes: Uint8Array,
  count: number,
): VmstateField {
  const { name, type, size } = f;
  const out = { name, type, size } as VmstateField;
  let made: VmstateElement[] | undefined;
  Object.defineProperty(out, 'elements', {
    enumerable: true,
    get: (): VmstateElement[] =>
      (made ??= Array.from({ length: count }, (_, i) => ({
        kind: 'bytes',
        data: bytes.subarray(i * size, (i + 1) * size),
      }))),
    // elements set from outside (a copy's own bytes) are the field's from then on
    set: (elements: VmstateElement[]): void => {
      made = elements;
      packedFields.delete(out);
    },
  });
  if (f.arrayLen !== undefined) out.arrayLen = f.arrayLen;
  if (f.index !== undefined) out.index = f.index;
  packedFields.set(out, { bytes, count });
  return out;
}

/** The bytes of a field packedVmstateField made (undefined for any other field, copies included). */
export function packedElements(f: VmstateField): PackedElements | undefined {
  return packedFields.get(f);
}
