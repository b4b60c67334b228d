import { SectionType } from '../../grammar/savevm.js';
import { be32At } from '../io/bytes.js';
import { readAt, type ByteSource } from '../io/source.js';
import { vmdescriptionText } from '../vmstate/vmdesc.js';

export interface VmdescLocation {
  /** offset of the QEMU_VM_VMDESCRIPTION type byte */
  offset: number;
  jsonOffset: number;
  jsonLength: number;
}

const TAIL_LIMIT = 64 << 20;

/**
 * Finds the vmdescription of a seekable stream before decoding it, so device sections can
 * be read field by field on the way. QEMU writes it last: `00` (QEMU_VM_EOF), `06`, be32
 * length, JSON to the very end of the stream. A candidate counts only if its length field
 * reaches exactly the end of the stream and the JSON opens with '{'; the forward decode
 * then confirms it is really where the stream's EOF record leads.
 */
export function locateVmdesc(src: ByteSource): VmdescLocation | undefined {
  const size = src.size;
  if (!src.seekable || size === undefined || size < 7) return undefined;
  const CHUNK = 1 << 20;
  const stop = Math.max(0, size - TAIL_LIMIT);
  // a small stream is read whole, in one read; a large one a megabyte at a time from its end
  const buf = new Uint8Array(Math.min(CHUNK, size - stop) + 6);
  let hi = size - 6; // last possible position of the 0x06 byte
  while (hi >= stop) {
    const lo = Math.max(stop, hi - (buf.length - 6) + 1);
    const n = readAt(src, buf, hi - lo + 6, lo);
    for (
      let i = buf.lastIndexOf(SectionType.QEMU_VM_VMDESCRIPTION, hi - lo);
      i >= 0;
      i = i > 0 ? buf.lastIndexOf(SectionType.QEMU_VM_VMDESCRIPTION, i - 1) : -1
    ) {
      const p = lo + i;
      if (buf[i + 5] !== 0x7b) continue;
      if (i + 5 >= n) continue;
      const len = be32At(buf, i + 1);
      if (p + 5 + len !== size) continue;
      if (p > 0 && !precededByEof(src, p)) continue;
      return { offset: p, jsonOffset: p + 5, jsonLength: len };
    }
    hi = lo - 1;
  }
  return undefined;
}

function precededByEof(src: ByteSource, p: number): boolean {
  const b = new Uint8Array(1);
  return readAt(src, b, 1, p - 1) === 1 && b[0] === SectionType.QEMU_VM_EOF;
}

export function readVmdescJson(src: ByteSource, loc: VmdescLocation): string {
  const b = new Uint8Array(loc.jsonLength);
  readAt(src, b, loc.jsonLength, loc.jsonOffset);
  // located, then read again by the decoder: one string for both when the bytes are the same
  return vmdescriptionText(b);
}
