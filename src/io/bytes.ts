/**
 * Integers at an index of a byte array, for scanners that look at bytes in place (no reader).
 * A byte past the end reads as 0: callers compare positions with the length before they trust
 * a value, and a scan must not throw on the last few bytes of a window.
 */
export function byteAt(b: Uint8Array, i: number): number {
  return b[i] ?? 0;
}

export function be16At(b: Uint8Array, i: number): number {
  return (byteAt(b, i) << 8) | byteAt(b, i + 1);
}

export function be32At(b: Uint8Array, i: number): number {
  return ((byteAt(b, i) << 24) | (byteAt(b, i + 1) << 16) | (byteAt(b, i + 2) << 8) | byteAt(b, i + 3)) >>> 0;
}

/** Little-endian (PCI config space). */
export function le16At(b: Uint8Array, i: number): number {
  return byteAt(b, i) | (byteAt(b, i + 1) << 8);
}

/** True when every byte is zero (a zero page, an unwritten slot). */
export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** True when the two arrays hold the same bytes (memcmp). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && asBuffer(a).equals(asBuffer(b));
}

function asBuffer(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.length);
}

/**
 * The first index at which two byte arrays differ: -1 when they are equal, the shorter one's
 * length when it is the start of the other. Blocks are compared with memcmp (Buffer.compare),
 * narrowing from 64 KiB to 256 bytes, so a mutant of a large seed costs little more than a copy.
 */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let at = 0;
  for (const block of [1 << 16, 1 << 12, 1 << 8]) {
    while (at + block <= n && sameRange(a, b, at, block)) at += block;
  }
  for (; at < n; at++) if (a[at] !== b[at]) return at;
  return a.length === b.length ? -1 : n;
}

function sameRange(a: Uint8Array, b: Uint8Array, at: number, length: number): boolean {
  return sameBytes(a.subarray(at, at + length), b.subarray(at, at + length));
}
