/** Hand assembly of wire bytes for tests whose expected layout comes from the spec. */
export const u8 = (v: number): number[] => [v & 0xff];
export const be16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
export const be32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
export const be64 = (v: number | bigint): number[] => {
  const b = BigInt(v);
  return [...be32(Number(b >> 32n)), ...be32(Number(b & 0xffffffffn))];
};
export const counted = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];
export const bytes = (n: number, fill = 0xab): number[] => new Array<number>(n).fill(fill);
export const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** QEVM, version 3 */
export const HEADER = [...be32(0x5145564d), ...be32(3)];
export const start = (id: number, idstr: string, instance: number, version: number): number[] => [
  0x01,
  ...be32(id),
  ...counted(idstr),
  ...be32(instance),
  ...be32(version),
];
export const full = (id: number, idstr: string, instance: number, version: number): number[] => [
  0x04,
  ...be32(id),
  ...counted(idstr),
  ...be32(instance),
  ...be32(version),
];
export const part = (id: number): number[] => [0x02, ...be32(id)];
export const end = (id: number): number[] => [0x03, ...be32(id)];
export const footer = (id: number): number[] => [0x7e, ...be32(id)];
export const EOF = [0x00];
export const vmdesc = (json: string): number[] => [0x06, ...be32(json.length), ...ascii(json)];

export function stream(...parts: number[][]): Uint8Array {
  return new Uint8Array(parts.flat());
}

/**
 * Where the machine type name of a stream's QEMU_VM_CONFIGURATION ends (the configuration right
 * after the file header: type at 8, be32 length at 9, the name at 13; worked-example.md).
 */
export function configurationNameEnd(b: Uint8Array): number {
  return 13 + new DataView(b.buffer, b.byteOffset).getUint32(9);
}

/**
 * A stream whose QEMU_VM_CONFIGURATION gets the subsection `name` with `fields` first (savevm-main-channel.md §3: QEMU_VM_SUBSECTION,
 * counted name, be32 version 1, its fields).
 */
export function withConfigurationSubsection(b: Uint8Array, name: string, fields: number[]): Uint8Array {
  const at = configurationNameEnd(b);
  return new Uint8Array([...b.subarray(0, at), 0x05, ...counted(name), ...be32(1), ...fields, ...b.subarray(at)]);
}

/** The configuration's "configuration/capabilities" subsection naming `names` (be32 count, a counted name each). */
export function withCapabilities(b: Uint8Array, names: readonly string[]): Uint8Array {
  return withConfigurationSubsection(b, 'configuration/capabilities', [
    ...be32(names.length),
    ...names.flatMap(counted),
  ]);
}
