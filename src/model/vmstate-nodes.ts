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
