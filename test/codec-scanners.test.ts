import { describe, expect, it } from 'vitest';
import { applyXbzrle, encodeXbzrle, XbzrleError } from '../src/ram/xbzrle.js';
import { scanForFooter } from '../src/codec/section-scan.js';
import { locateVmdesc } from '../src/codec/locate-vmdesc.js';
import { detectChannelKind, resolveChannelKind } from '../src/codec/channels.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource, type ByteSource } from '../src/io/source.js';
import { ascii, be16, be32, bytes, EOF, footer, full, part, start } from './bytes.js';
import { PipeLike } from './helpers.js';

/**
 * The codec's scanners, each on inputs built to sit on one of its edges: XBZRLE deltas
 * (migration/xbzrle.c; savevm-main-channel.md §6.2, corrections #34), the footer scan that
 * delimits an undescribed section (§4.3), the backward search for the vmdescription (§5.5)
 * and the channel kind from the first four bytes (QEMU_VM_FILE_MAGIC, MULTIFD_MAGIC).
 */

describe('applyXbzrle', () => {
  const apply = (enc: number[], page: number[]): number[] => {
    const p = new Uint8Array(page);
    applyXbzrle(new Uint8Array(enc), p);
    return [...p];
  };
  const fails = (enc: number[], pageLength: number): string => {
    try {
      applyXbzrle(new Uint8Array(enc), new Uint8Array(pageLength));
    } catch (e) {
      expect(e).toBeInstanceOf(XbzrleError);
      return (e as Error).message;
    }
    throw new Error('no XbzrleError');
  };

  it('pairs of (unchanged run, changed run) rewrite the page in place', () => {
    expect(apply([], [1, 2, 3])).toEqual([1, 2, 3]);
    expect(apply([2, 1, 9], [1, 2, 3, 4])).toEqual([1, 2, 9, 4]);
    // a first unchanged run of 0 is allowed; the last changed run may end the page exactly
    expect(apply([0, 2, 7, 8, 1, 1, 6], [1, 2, 3, 4, 5])).toEqual([7, 8, 3, 6, 5]);
    expect(apply([3, 2, 7, 8], [0, 0, 0, 0, 0])).toEqual([0, 0, 0, 7, 8]);
  });

  it('reads two-byte ULEB128 lengths', () => {
    const page = new Array<number>(200).fill(0);
    const out = apply([0x80 | 1, 0x01, 2, 0xaa, 0xbb], page); // zrun 1 + 128
    expect(out[129]).toBe(0xaa);
    expect(out[130]).toBe(0xbb);
    expect(out.filter((x) => x !== 0)).toHaveLength(2);
  });

  it('names each malformed delta', () => {
    expect(fails([5], 10)).toBe('length expected at 1, data ends');
    expect(fails([0x85], 200)).toBe('second length byte expected at 1, data ends');
    expect(fails([1, 0x85], 200)).toBe('second length byte expected at 2, data ends');
    expect(fails([0x80, 0x80, 0x01], 70000)).toBe('length at 0 longer than 2 bytes');
    expect(fails([1, 1, 9, 0, 1, 9], 10)).toBe('an empty unchanged run after the first pair');
    expect(fails([1, 0], 10)).toBe('an empty changed run');
    expect(fails([3, 2, 7, 8], 4)).toBe('a run past the end of the page or the data');
    expect(fails([0, 3, 7, 8], 10)).toBe('a run past the end of the page or the data');
  });
});

/**
 * The XBZRLE encoder the save engine uses, against migration/xbzrle.c xbzrle_encode_buffer:
 * the overflow check (d + 2 > dlen) comes before every zero run, the last one included, so a
 * limit must leave two bytes beyond an encoding that ends with unchanged bytes; a changed run
 * must fit whole (d + nzrun_len > dlen); an unchanged page encodes to nothing (QEMU: 0).
 */
describe('encodeXbzrle', () => {
  const page = (changes: Record<number, number>, n = 8): Uint8Array => {
    const p = new Uint8Array(n);
    for (const [at, v] of Object.entries(changes)) p[Number(at)] = v;
    return p;
  };
  const enc = (next: Uint8Array, limit?: number): number[] | undefined => {
    const out = encodeXbzrle(new Uint8Array(next.length), next, limit);
    return out && [...out];
  };

  it('runs of unchanged and changed bytes; the trailing unchanged run left out', () => {
    expect(enc(page({}))).toBeUndefined();
    expect(enc(page({ 2: 9 }))).toEqual([2, 1, 9]);
    expect(enc(page({ 0: 5 }))).toEqual([0, 1, 5]);
    expect(enc(page({ 7: 7 }))).toEqual([7, 1, 7]);
    expect(enc(page({ 1: 8, 2: 8, 5: 9 }, 16))).toEqual([1, 2, 8, 8, 2, 1, 9]);
    // the same changes in an 8-byte page: 7 + 2 > 8 before the trailing run, so no encoding
    expect(enc(page({ 1: 8, 2: 8, 5: 9 }))).toBeUndefined();
  });

  it('two-byte lengths from 128 on', () => {
    expect(enc(page({ 200: 1 }, 256))).toEqual([0xc8, 0x01, 0x01, 0x01]);
    const next = new Uint8Array(136);
    next.fill(1, 0, 130);
    expect(enc(next)).toEqual([0, 0x82, 0x01, ...new Array<number>(130).fill(1)]);
  });

  it('gives up where QEMU does: two bytes short before a zero run, or a changed run that does not fit', () => {
    // [2, 1, 9], then the check before the trailing run: 3 + 2 > limit
    expect(enc(page({ 2: 9 }), 5)).toEqual([2, 1, 9]);
    expect(enc(page({ 2: 9 }), 4)).toBeUndefined();
    expect(enc(page({ 2: 9 }), 3)).toBeUndefined();
    // eight changed bytes: [0, 8, ...8 bytes], 10 in all
    const all = new Uint8Array(8).fill(0xff);
    expect(enc(all, 10)).toEqual([0, 8, ...all]);
    expect(enc(all, 9)).toBeUndefined();
    expect(enc(all, 1)).toBeUndefined();
  });

  it('decodes back to the page it encoded (applyXbzrle over the old page)', () => {
    const prev = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff);
    const next = prev.slice();
    for (const at of [0, 1, 2, 100, 101, 1000, 2047, 2048, 4000, 4095]) next[at] = (next[at] + 1) & 0xff;
    next.fill(0xaa, 3000, 3300);
    const delta = encodeXbzrle(prev, next);
    if (!delta) throw new Error('no encoding');
    const out = prev.slice();
    applyXbzrle(delta, out);
    expect(Buffer.from(out).equals(Buffer.from(next))).toBe(true);
  });
});

/** A source that hands out at most `step` bytes a read (a pipe delivering slowly). */
class TrickleSource implements ByteSource {
  readonly seekable = false;
  readonly size = undefined;
  readonly name = 'trickle';
  constructor(
    private readonly data: Uint8Array,
    private readonly step: number,
  ) {}
  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    const n = Math.max(0, Math.min(length, this.step, this.data.length - at));
    into.set(this.data.subarray(at, at + n), intoOffset);
    return n;
  }
  close(): void {}
}

describe('scanForFooter', () => {
  const ID = 3;
  const scan = (b: number[], opts: { known?: number[]; limit?: number; step?: number; capacity?: number } = {}) => {
    const src = opts.step ? new TrickleSource(new Uint8Array(b), opts.step) : new BufferSource(new Uint8Array(b));
    const r = new StreamReader(src, opts.capacity ?? 1 << 16);
    return scanForFooter(r, ID, new Set(opts.known ?? [ID]), opts.limit ?? 1 << 20);
  };
  const payload = bytes(10, 0x41);

  it('stops at the footer followed by each kind of top-level record', () => {
    const cmd = (c: number, len: number): number[] => [0x08, ...be16(c), ...be16(len)];
    const nexts: [string, number[]][] = [
      ['EOF at the end', EOF],
      ['EOF + vmdescription', [0x00, 0x06, 0, 0]],
      ['START', start(4, 'cpu', 0, 1)],
      ['FULL', full(4, 'cpu', 0, 1)],
      ['FULL with a space and ~ in its idstr', full(4, 'a b~', 0, 1)],
      ['PART of a known section', part(ID)],
      ['END of a known section', [0x03, ...be32(ID)]],
      ['PING with its length', cmd(2, 4)],
      ['POSTCOPY_ADVISE (two lengths)', cmd(3, 16)],
      ['END cut by the end of the stream', [0x03, 0, 0]],
      ['START cut by the end of the stream', [0x01, 0, 0, 0, 4, 3, 0x61]],
    ];
    for (const [what, next] of nexts) expect(scan([...payload, ...footer(ID), ...next]), what).toBe(10);
  });

  it('passes over a footer followed by anything else', () => {
    const cmd = (c: number, len: number): number[] => [0x08, ...be16(c), ...be16(len)];
    const nots: [string, number[]][] = [
      ['PING with a wrong length', cmd(2, 5)],
      ['an unknown command', cmd(99, 0)],
      ['PART of an unknown section', part(9)],
      ['END of an unknown section', [0x03, ...be32(9)]],
      ['START with an empty idstr', [0x01, ...be32(4), 0, ...be32(0), ...be32(1)]],
      ['FULL with a control byte in its idstr', full(4, 'a\x1fb', 0, 1)],
      ['FULL with DEL in its idstr', full(4, 'a\x7fb', 0, 1)],
      ['an unknown record type', [0x42, 0, 0, 0, 0, 0, 0]],
      ['a footer of another section', [...footer(ID + 1)]],
    ];
    for (const [what, next] of nots) {
      // the real footer comes 3 bytes later, followed by EOF at the end
      const b = [...payload, ...footer(ID), ...next, 1, 2, 3, ...footer(ID), ...EOF];
      expect(scan(b), what).toBe(10 + 5 + next.length + 3);
    }
  });

  it('a footer on its own at the end of the stream ends the payload', () => {
    expect(scan([...payload, ...footer(ID)])).toBe(10);
    // a footer whose id is cut short is not one
    expect(scan([...payload, 0x7e, 0, 0, 0])).toBeUndefined();
  });

  it('the id must follow a 0x7e byte', () => {
    // be32(ID) then EOF inside the payload, after a byte that is not the footer marker
    const b = [...payload, 0x55, ...be32(ID), ...EOF, 9, 9, ...footer(ID), ...EOF];
    expect(scan(b)).toBe(10 + 5 + 3);
  });

  it('a footer followed by EOF and then more is the end only when nothing better follows', () => {
    const eofThenJunk = [...footer(ID), ...EOF, 0x42];
    expect(scan([...payload, ...eofThenJunk, 7, 7])).toBe(10);
    // the first such candidate, not a later one
    expect(scan([...payload, ...eofThenJunk, ...eofThenJunk, 7])).toBe(10);
    // a plausible footer later wins over the fallback
    expect(scan([...payload, ...eofThenJunk, ...footer(ID), ...part(ID)])).toBe(10 + 7);
  });

  it('looks no further than the limit', () => {
    const b = [...payload, ...footer(ID), ...EOF];
    expect(scan(b, { limit: 10 })).toBe(10);
    expect(scan(b, { limit: 9 })).toBeUndefined();
  });

  it('finds a footer whose next record straddles a read window', () => {
    // a footer 4098 bytes in, followed by a FULL with a 255-byte idstr: the first window
    // (4096 bytes + the look-ahead) holds the footer but not all of the record after it
    const long = 'x'.repeat(255);
    for (const at of [4090, 4096, 4097, 4098, 4105, 4200]) {
      const b = [...bytes(at, 0x41), ...footer(ID), ...full(4, long, 0, 1), ...bytes(5000, 0x41)];
      expect(scan(b, { step: 1 }), `footer at ${at}`).toBe(at);
      expect(scan(b, { step: 7 }), `footer at ${at}, 7-byte reads`).toBe(at);
    }
  });

  it('gives up when the read buffer is full', () => {
    const b = [...bytes(3000, 0x41), ...footer(ID), ...EOF];
    expect(scan(b, { capacity: 4096 })).toBe(3000);
    expect(scan([...bytes(5000, 0x41), ...footer(ID), ...EOF], { capacity: 4096 })).toBeUndefined();
  });
});

describe('locateVmdesc', () => {
  const src = (b: number[]): BufferSource => new BufferSource(new Uint8Array(b));
  const vmdesc = (json: string): number[] => [0x06, ...be32(json.length), ...ascii(json)];

  it('finds `00 06 len {...}` ending the stream', () => {
    const b = [...bytes(20, 0x41), ...EOF, ...vmdesc('{"devices":[]}')];
    expect(locateVmdesc(src(b))).toEqual({ offset: 21, jsonOffset: 26, jsonLength: 14 });
    // the shortest: one JSON byte, right at the end
    expect(locateVmdesc(src([0x41, ...EOF, ...vmdesc('{')]))).toEqual({ offset: 2, jsonOffset: 7, jsonLength: 1 });
    // at offset 0 there is no EOF before it to check
    expect(locateVmdesc(src(vmdesc('{}')))).toEqual({ offset: 0, jsonOffset: 5, jsonLength: 2 });
  });

  it('not without the EOF byte before it, a length that reaches the end, or a "{"', () => {
    expect(locateVmdesc(src([...bytes(20, 0x41), 0x01, ...vmdesc('{"devices":[]}')]))).toBeUndefined();
    expect(locateVmdesc(src([...bytes(20, 0x41), ...EOF, ...vmdesc('{"devices":[]}'), 0]))).toBeUndefined();
    expect(locateVmdesc(src([...bytes(20, 0x41), ...EOF, ...vmdesc('["devices"]')]))).toBeUndefined();
    expect(locateVmdesc(src([...EOF, 6, 0]))).toBeUndefined();
    expect(locateVmdesc(new PipeLike(new Uint8Array([...EOF, ...vmdesc('{}')])))).toBeUndefined();
  });

  it('the last candidate wins: JSON holding `00 06` is not cut', () => {
    // the JSON itself contains a byte sequence that reads as a shorter candidate
    const inner = '{"a":"\x00\x06\x00\x00\x00\x02{}"}';
    const b = [...bytes(4, 0x41), ...EOF, ...vmdesc(inner)];
    expect(locateVmdesc(src(b))).toEqual({ offset: 5, jsonOffset: 10, jsonLength: inner.length });
  });

  it('a vmdescription of 1 MiB and more, across the 1 MiB read chunks', () => {
    for (const n of [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, (3 << 20) + 17]) {
      const json = '{' + ' '.repeat(n - 2) + '}';
      const b = new Uint8Array(105 + n);
      b.fill(0x41, 0, 99);
      b.set([0, 0x06, ...be32(n)], 99);
      b.set(ascii(json), 105);
      expect(locateVmdesc(new BufferSource(b)), `${n}`).toEqual({ offset: 100, jsonOffset: 105, jsonLength: n });
    }
  });
});

describe('channel kind', () => {
  it('by the first four bytes; a pipe or anything else reads as the main channel', () => {
    const qevm = new BufferSource(new Uint8Array([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3]));
    const multifd = new BufferSource(new Uint8Array([...be32(0x11223344), ...be32(1)]));
    const other = new BufferSource(new Uint8Array([...be32(0x11223345), ...be32(1)]));
    const short = new BufferSource(new Uint8Array([0x51, 0x45, 0x56]));
    expect(detectChannelKind(qevm)).toBe('main');
    expect(detectChannelKind(multifd)).toBe('multifd');
    expect(detectChannelKind(other)).toBeUndefined();
    expect(detectChannelKind(short)).toBeUndefined();
    expect(detectChannelKind(new PipeLike(new Uint8Array([...be32(0x11223344)])))).toBeUndefined();
    expect(resolveChannelKind(multifd)).toBe('multifd');
    expect(resolveChannelKind(other)).toBe('main');
    expect(resolveChannelKind(qevm, 'return-path')).toBe('return-path');
    expect(resolveChannelKind(multifd, 'main')).toBe('main');
  });
});
