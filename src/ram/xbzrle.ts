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
