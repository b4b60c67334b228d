/**
 * What else a file handed to migstream can be, told by its first bytes: compressed
 * captures, disk images, the other migration channels. Each names what handles it, so an
 * error says "a zstd-compressed file: zstd -d FILE" instead of a bad QEVM magic.
 */
export interface InputKind {
  readonly name: string;
  /** the first bytes that identify it */
  readonly magic: readonly number[];
  /** what to do with it */
  readonly hint: string;
}

export const INPUT_KINDS: readonly InputKind[] = [
  // gzip is read directly (io/inflate-source.ts), a qcow2 image's snapshots too (src/qcow2/), and the
  // CPR state channel is a channel kind of its own (codec/channels.ts), so none of them is here
  { name: 'a zstd-compressed file', magic: [0x28, 0xb5, 0x2f, 0xfd], hint: 'decompress it first: zstd -d FILE' },
  {
    name: 'an xz-compressed file',
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    hint: 'decompress it first: xz -d FILE',
  },
  { name: 'a bzip2-compressed file', magic: [0x42, 0x5a, 0x68], hint: 'decompress it first: bzip2 -d FILE' },
  { name: 'an lzop-compressed file', magic: [0x89, 0x4c, 0x5a, 0x4f], hint: 'decompress it first: lzop -d FILE' },
];

export const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** The kind whose magic starts `head`, if any. */
export function inputKindOf(head: Uint8Array): InputKind | undefined {
  return INPUT_KINDS.find((k) => k.magic.length <= head.length && k.magic.every((b, i) => head[i] === b));
}
