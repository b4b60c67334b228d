import { migCommandByValue, SectionType } from '../../grammar/savevm.js';
import type { StreamReader } from '../io/reader.js';
import { be16At, be32At, byteAt } from '../io/bytes.js';

/**
 * Finds where an undescribed section payload ends when the stream has section footers:
 * the first `0x7e be32(sectionId)` that is followed by something that parses as the next
 * top-level record. Looks at most `limit` bytes ahead; returns the payload length or
 * undefined.
 */
export function scanForFooter(
  r: StreamReader,
  sectionId: number,
  knownIds: ReadonlySet<number>,
  limit: number,
): number | undefined {
  const LOOKAHEAD = 5 + 1 + 4 + 1 + 255 + 8;
  let from = 0;
  // QEMU stops at QEMU_VM_EOF whatever follows it: a footer followed by EOF and then
  // something else is the end only if no better candidate exists
  let eofFallback: number | undefined;
  for (;;) {
    const haveAll = !r.fill(Math.min(r.capacity, from + 4096 + LOOKAHEAD));
    const win = r.window();
    const last = haveAll ? win.length - 5 : win.length - LOOKAHEAD;
    for (let i = from; i <= last && i <= limit; i++) {
      // memchr to the next footer byte
      i = win.indexOf(SectionType.QEMU_VM_SECTION_FOOTER, i);
      if (i < 0 || i > last || i > limit) break;
      const id = be32At(win, i + 1);
      if (id !== sectionId) continue;
      if (plausibleNextRecord(win, i + 5, haveAll, knownIds)) {
        // this candidate and the ones before it looked at most LOOKAHEAD bytes past it; if that is past the end, the end decided
        r.noteLookahead(i + LOOKAHEAD <= win.length ? r.offset + i + LOOKAHEAD : Infinity);
        return i;
      }
      if (eofFallback === undefined && win[i + 5] === SectionType.QEMU_VM_EOF) eofFallback = i;
    }
    if (haveAll || last >= limit || win.length >= r.capacity) {
      // no candidate would do: everything up to the end (or the limit) was looked at
      r.noteLookahead(Infinity);
      return eofFallback;
    }
    from = Math.max(from, last + 1);
  }
}

function plausibleNextRecord(b: Uint8Array, j: number, atEnd: boolean, knownIds: ReadonlySet<number>): boolean {
  if (j >= b.length) return atEnd;
  switch (b[j]) {
    case SectionType.QEMU_VM_EOF:
      return j + 1 >= b.length ? atEnd : b[j + 1] === SectionType.QEMU_VM_VMDESCRIPTION;
    case SectionType.QEMU_VM_SECTION_START:
    case SectionType.QEMU_VM_SECTION_FULL: {
      if (j + 6 > b.length) return atEnd;
      const n = byteAt(b, j + 5);
      if (n === 0 || j + 6 + n + 8 > b.length) return n > 0 && atEnd;
      for (let k = 0; k < n; k++) {
        const c = byteAt(b, j + 6 + k);
        if (c < 0x20 || c > 0x7e) return false;
      }
      return true;
    }
    case SectionType.QEMU_VM_SECTION_PART:
    case SectionType.QEMU_VM_SECTION_END:
      if (j + 5 > b.length) return atEnd;
      return knownIds.has(be32At(b, j + 1));
    case SectionType.QEMU_VM_COMMAND: {
      if (j + 5 > b.length) return atEnd;
      const cmd = be16At(b, j + 1);
      const len = be16At(b, j + 3);
      const def = migCommandByValue.get(cmd);
      return def !== undefined && (def.len === undefined || def.len === len);
    }
    default:
      return false;
  }
}
