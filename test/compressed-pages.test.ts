/**
 * A zlib channel's stream (src/multifd/zlib-pages.ts) as migration/multifd-zlib.c writes it: one
 * deflate stream, flushed with Z_SYNC_FLUSH at the end of each packet. pako writes a packet's
 * pages straight into the packet's buffer (one byte more than the pages): exactly the pages is
 * a packet's, a byte more or less breaks the stream.
 */
import { describe, expect, it } from 'vitest';
import pako from 'pako';
import { ZlibPages } from '../src/multifd/zlib-pages.js';

const PAGE = 4096;

/** Each piece deflated in turn by one stream, flushed after each (a packet's data). */
function packets(pieces: Uint8Array[]): Uint8Array[] {
  const d = new pako.Deflate({ level: 1 });
  const out: Uint8Array[] = [];
  let got: Uint8Array[] = [];
  d.onData = (c) => void got.push(c as Uint8Array);
  for (const p of pieces) {
    d.push(p, pako.constants.Z_SYNC_FLUSH);
    out.push(new Uint8Array(Buffer.concat(got)));
    got = [];
  }
  return out;
}

function pages(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

describe('a zlib channel stream, packet by packet', () => {
  it("gives each packet's pages, the stream carried from one packet to the next", () => {
    const want = [pages(2 * PAGE, 1), pages(PAGE, 2), pages(3 * PAGE, 1)];
    const s = new ZlibPages();
    packets(want).forEach((data, i) => {
      const got = s.packet(data, want[i].length);
      expect(got && Buffer.from(got).equals(Buffer.from(want[i]))).toBe(true);
    });
    expect(s.broken).toBe(false);
  });

  it('a packet whose data holds one byte more than its pages breaks the stream (the spare byte is not a page)', () => {
    const data = packets([pages(PAGE + 1, 3), pages(PAGE, 4)]);
    const s = new ZlibPages();
    expect(s.packet(data[0], PAGE)).toBeUndefined();
    expect(s.broken).toBe(true);
    expect(s.packet(data[1], PAGE)).toBeUndefined();
  });

  it('a packet whose data holds one byte less than its pages breaks the stream', () => {
    const s = new ZlibPages();
    expect(s.packet(packets([pages(PAGE - 1, 5)])[0], PAGE)).toBeUndefined();
    expect(s.broken).toBe(true);
  });
});
