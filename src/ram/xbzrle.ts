/**
 * XBZRLE page deltas (migration/xbzrle.c; spec savevm-main-channel.md §6.2 and
 * corrections #34): pairs of ULEB128 lengths, `zrun` unchanged bytes then `nzrun` new
 * bytes copied verbatim. QEMU's encoder uses the 1-2 byte "small" ULEB128 form.
 */
import { byteAt } from '../io/bytes.js';

export class XbzrleError extends Error {}

function uleb(src: Uint8Array, at: number): [number, number] {
  if (at >= src.length) throw new XbzrleError(`length expected at ${at}, data ends`);
  const b0 = byteAt(src, at);
  if (!(b0 & 0x80)) return [b0, 1];
  if (at + 1 >= src.length) throw new XbzrleError(`second length byte expected at ${at + 1}, data ends`);
  const b1 = byteAt(src, at + 1);
  if (b1 & 0x80) throw new XbzrleError(`length at ${at} longer than 2 bytes`);
  return [(b0 & 0x7f) | (b1 << 7), 2];
}

/** Apply an encoded delta to `page` in place (the previous content of the page). */
export function applyXbzrle(encoded: Uint8Array, page: Uint8Array): void {
  let i = 0;
  let d = 0;
  while (i < encoded.length) {
    const [zrun, zn] = uleb(encoded, i);
    i += zn;
    if (zrun === 0 && d !== 0) throw new XbzrleError('an empty unchanged run after the first pair');
    d += zrun;
    const [nzrun, nn] = uleb(encoded, i);
    i += nn;
    if (nzrun === 0) throw new XbzrleError('an empty changed run');
    if (d + nzrun > page.length || i + nzrun > encoded.length)
      throw new XbzrleError('a run past the end of the page or the data');
    page.set(encoded.subarray(i, i + nzrun), d);
    i += nzrun;
    d += nzrun;
  }
}

function ulebSmall(out: number[], v: number): void {
  if (v < 0x80) out.push(v);
  else out.push((v & 0x7f) | 0x80, v >>> 7);
}

/**
 * Encode `next` against `prev` (the page as last sent) the way migration/xbzrle.c does:
 * maximal runs of unchanged bytes and of changed bytes, each changed run followed by its
 * bytes, the trailing unchanged run left out. Returns undefined where QEMU's encoder gives
 * up: the page is unchanged (nothing is sent) or the encoding would not fit in `limit`
 * bytes (QEMU then sends a normal page).
 */
export function encodeXbzrle(prev: Uint8Array, next: Uint8Array, limit = next.length): Uint8Array | undefined {
  const out: number[] = [];
  const n = next.length;
  let i = 0;
  while (i < n) {
    if (out.length + 2 > limit) return undefined;
    const zStart = i;
    while (i < n && prev[i] === next[i]) i++;
    if (i - zStart === n) return undefined;
    if (i === n) break;
    ulebSmall(out, i - zStart);
    if (out.length + 2 > limit) return undefined;
    const nzStart = i;
    while (i < n && prev[i] !== next[i]) i++;
    ulebSmall(out, i - nzStart);
    if (out.length + (i - nzStart) > limit) return undefined;
    for (let k = nzStart; k < i; k++) out.push(next[k] ?? 0);
  }
  return Uint8Array.from(out);
}
