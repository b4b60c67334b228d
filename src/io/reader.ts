import { StreamError, type StreamErrorCode } from '../model/errors.js';
import { BufferSource, type ByteSource } from './source.js';
import { sameBytes } from './bytes.js';

const DEFAULT_CAPACITY = 1 << 22; // 4 MiB: large reads, few syscalls
const TWO32 = 0x1_0000_0000;

/**
 * Each input byte sits SKEW bytes further into its page of the buffer than it sits in its page
 * of the input. Reading into a destination at the same place in its page as the bytes' file
 * position made reads 4-5x slower on the development machine (4K aliasing in the kernel's copy,
 * bench/run.ts): 4 GiB of VFIO device state, read in whole buffers, took 1.6 s against dd's 0.3.
 * The buffer has a page more than its capacity for it.
 */
const PAGE = 4096;
const SKEW = 64;

/** The buffer index for the byte at absolute `offset` when it is the first one kept. */
function skewedIndex(offset: number): number {
  return (offset + SKEW) % PAGE;
}

/**
 * Pull reader over a ByteSource with absolute offsets and a bounded buffer.
 *
 * `bytes(n)` returns a view into the buffer: it stays valid only until the next call
 * that reads. Callers that keep data copy it (`copyBytes`). Nothing here allocates per
 * record except those views.
 */
export class StreamReader {
  private buf: Uint8Array;
  /** buf's ArrayBuffer and where buf starts in it: `bytes` makes its views from them */
  private arrayBuffer: ArrayBufferLike;
  private bufStart = 0;
  private view: DataView;
  /** absolute offset of buf[0] */
  private base = 0;
  private pos = 0;
  private end = 0;
  private eof = false;
  /** context for error messages, maintained by the decoders: outermost first */
  readonly path: string[] = [];
  /**
   * The end of the bytes a decision looked at ahead of the read position (a footer search, a
   * layout tried on a window): what was read so far depends on the bytes before it, not only
   * on those before `offset`. Infinity when a decision depended on where the stream ends.
   */
  private lookedTo = 0;
  /**
   * Called before the buffered bytes move or are given up: a consumer comparing views of them
   * (roundtrip's CompareSink) does so then, while they are still the input's.
   */
  beforeMove: (() => void) | undefined;
  /** the view `bytes` handed out last (holdsAt knows it without asking for its buffer) */
  private lastBytes: Uint8Array | undefined;

  /** bytes of the buffer beyond its capacity, for SKEW (none for a reader `over` bytes) */
  private slack: number;
  /** the first buffer index holding input (the bytes below it are left from before the last move) */
  private start: number;

  constructor(
    readonly source: ByteSource,
    capacity = DEFAULT_CAPACITY,
    startOffset = 0,
  ) {
    this.slack = capacity > 0 ? PAGE : 0;
    const t = capacity > 0 ? skewedIndex(startOffset) : 0;
    this.base = startOffset - t;
    this.pos = this.end = this.start = t;
    // not zero-filled: only bytes read into it (between pos and end) are ever looked at, and
    // a fresh zeroed 4 MiB per stream was a third of a small input's cost (the fuzzer's)
    const size = capacity + this.slack;
    this.arrayBuffer = Buffer.allocUnsafeSlow(size).buffer;
    this.buf = new Uint8Array(this.arrayBuffer, 0, size);
    this.view = new DataView(this.arrayBuffer);
  }

  /**
   * A reader over bytes already in memory (a section payload cut out of the stream, whose
   * first byte is at `startOffset`): the bytes are its buffer, neither copied nor moved, and
   * reads past them are the end of the stream.
   */
  static over(bytes: Uint8Array, name: string, startOffset: number): StreamReader {
    const r = new StreamReader(new BufferSource(bytes, name, startOffset), 0, startOffset);
    r.slack = 0;
    r.base = startOffset;
    r.pos = r.start = 0;
    r.buf = bytes;
    r.arrayBuffer = bytes.buffer;
    r.bufStart = bytes.byteOffset;
    r.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    r.end = bytes.length;
    r.eof = true;
    return r;
  }

  get offset(): number {
    return this.base + this.pos;
  }

  /** A decision looked at the bytes before `end` (absolute; Infinity: at where the stream ends). */
  noteLookahead(end: number): void {
    if (end > this.lookedTo) this.lookedTo = end;
  }

  /** The bytes before this offset decided what was read so far: the read position, or further when a decision looked ahead. */
  get decidedBy(): number {
    return Math.max(this.offset, this.lookedTo);
  }

  get available(): number {
    return this.end - this.pos;
  }

  get capacity(): number {
    return this.fixedCapacity ?? this.buf.length - this.slack;
  }

  /** the capacity of the reader this one stands for (inMemory), when it is not its buffer's */
  private fixedCapacity: number | undefined;

  /**
   * A reader of a whole stream in memory from `startOffset` that reads as a reader of
   * `capacity` would: such a reader holds all of the stream once it has read, so here the
   * bytes are its buffer, not copied. Undefined when the rest of the stream is larger than
   * `capacity` (that reader would read it in parts, and only a reader of a source does so).
   * The fuzzer reads each mutant from a checkpoint this way.
   */
  static inMemory(
    bytes: Uint8Array,
    name: string,
    startOffset: number,
    capacity = DEFAULT_CAPACITY,
  ): StreamReader | undefined {
    if (bytes.length - startOffset > capacity) return undefined;
    const r = StreamReader.over(bytes, name, 0);
    r.pos = startOffset;
    r.fixedCapacity = capacity;
    return r;
  }

  error(code: StreamErrorCode, expected: string, found: string, at = this.offset): StreamError {
    return new StreamError(code, at, [...this.path], expected, found);
  }

  /** Make sure `n` bytes are buffered; false at end of stream. n must fit the buffer. */
  fill(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    if (n > this.capacity) throw this.error('limit', `a read of at most ${this.capacity} bytes`, `${n}`);
    // at the end of the stream nothing more will be read: the buffered bytes stay where they
    // are (a reader `over` a payload must not move the caller's bytes)
    const t = skewedIndex(this.base + this.pos);
    if (this.pos !== t && !this.eof) {
      this.beforeMove?.();
      this.buf.copyWithin(t, this.pos, this.end);
      this.base += this.pos - t;
      this.end += t - this.pos;
      this.pos = this.start = t;
    }
    while (this.end - this.pos < n && !this.eof) {
      const got = this.source.read(this.buf, this.end, this.buf.length - this.end, this.base + this.end);
      if (got === 0) this.eof = true;
      else this.end += got;
    }
    return this.end - this.pos >= n;
  }

  ensure(n: number, what: string): void {
    if (!this.fill(n)) {
      throw this.error('truncated', `${n} bytes of ${what}`, `end of stream after ${this.end - this.pos}`);
    }
  }

  /** Next byte without consuming it, or -1 at end of stream. */
  peekU8(): number {
    if (this.pos < this.end || this.fill(1)) return this.buf[this.pos]!;
    return -1;
  }

  /** Byte at `ahead` positions from the current one (must have been filled). */
  peekAt(ahead: number): number {
    return this.buf[this.pos + ahead]!;
  }

  atEnd(): boolean {
    return this.peekU8() < 0;
  }

  u8(what = 'u8'): number {
    if (this.pos >= this.end) this.ensure(1, what);
    return this.buf[this.pos++]!;
  }

  be16(what = 'be16'): number {
    if (this.end - this.pos < 2) this.ensure(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  be32(what = 'be32'): number {
    if (this.end - this.pos < 4) this.ensure(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  /** be64 as a BigInt: for values that can exceed 2^53 (never on the per-page path). */
  be64(what = 'be64'): bigint {
    if (this.end - this.pos < 8) this.ensure(8, what);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  le32(what = 'le32'): number {
    if (this.end - this.pos < 4) this.ensure(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  le64(what = 'le64'): bigint {
    if (this.end - this.pos < 8) this.ensure(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** High and low 32-bit words of a be64, without BigInt: the RAM hot path. */
  be64Words(what = 'be64'): [number, number] {
    if (this.end - this.pos < 8) this.ensure(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    return [hi, lo];
  }

  /** be64 that must fit a JS number (offsets, lengths); larger values are stream errors. */
  be64Number(what = 'be64'): number {
    const at = this.offset;
    const [hi, lo] = this.be64Words(what);
    if (hi >= 0x200000)
      throw this.error(
        'bad-value',
        `${what} below 2^53`,
        `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`,
        at,
      );
    return hi * TWO32 + lo;
  }

  /** A view of the next n bytes (valid until the next read). */
  bytes(n: number, what = 'bytes'): Uint8Array {
    if (this.end - this.pos < n) this.ensure(n, what);
    // made directly rather than by subarray, which looks up the array's species each time:
    // half the cost, on the per-page path (35 against 65 ns a view here)
    const v = new Uint8Array(this.arrayBuffer, this.bufStart + this.pos, n);
    this.pos += n;
    this.lastBytes = v;
    return v;
  }

  /**
   * A copy of the next n bytes, for data that outlives the next read. Larger than the
   * buffer is fine; the length is checked against the stream size before allocating.
   */
  copyBytes(n: number, what = 'bytes'): Uint8Array {
    if (n <= this.capacity) return this.bytes(n, what).slice();
    const size = this.source.size;
    if (size !== undefined && this.offset + n > size) {
      throw this.error('truncated', `${n} bytes of ${what}`, `end of stream after ${size - this.offset}`);
    }
    if (size === undefined) {
      // a pipe: hold only what has actually arrived, so a lying length cannot allocate
      const parts: Uint8Array[] = [];
      this.chunks(n, what, (c) => parts.push(c.slice()));
      return new Uint8Array(Buffer.concat(parts));
    }
    const out = new Uint8Array(n);
    let o = 0;
    this.chunks(n, what, (c) => {
      out.set(c, o);
      o += c.length;
    });
    return out;
  }

  /** QEMU counted string: u8 length + bytes, decoded 1:1 as latin1 so it re-encodes exactly. */
  counted(what = 'counted string'): string {
    const len = this.u8(`${what} length`);
    const b = this.bytes(len, what);
    return latin1(b);
  }

  /**
   * Skip n bytes. Seekable sources jump; others read and discard. The data is never held.
   */
  skip(n: number, what = 'bytes'): void {
    const buffered = this.end - this.pos;
    if (n <= buffered) {
      this.pos += n;
      return;
    }
    const target = this.offset + n;
    this.pos = this.end;
    if (this.source.seekable) {
      this.beforeMove?.();
      const t = skewedIndex(target);
      this.base = target - t;
      this.pos = this.start = t;
      this.end = t;
      if (this.source.size !== undefined && target > this.source.size) {
        throw this.error('truncated', `${n} bytes of ${what}`, 'end of stream', this.source.size);
      }
      return;
    }
    while (this.offset < target) {
      if (!this.fill(1)) throw this.error('truncated', `${n} bytes of ${what}`, 'end of stream');
      this.pos = Math.min(this.end, this.pos + (target - this.offset));
    }
  }

  /** Move forward to an absolute offset (mapped-ram areas). */
  seekTo(abs: number, what: string): void {
    if (abs < this.offset) throw this.error('bad-value', `an offset at or after ${this.offset} for ${what}`, `${abs}`);
    this.skip(abs - this.offset, what);
  }

  /**
   * Stream the next n bytes in chunks (a VFIO device state of tens of GB never sits in
   * memory). Each chunk is a view valid only inside the callback.
   */
  chunks(n: number, what: string, onChunk: (chunk: Uint8Array) => void): void {
    let left = n;
    while (left > 0) {
      if (this.pos >= this.end && !this.fill(1)) {
        throw this.error('truncated', `${left} more bytes of ${what}`, 'end of stream');
      }
      const take = Math.min(left, this.end - this.pos);
      onChunk(this.buf.subarray(this.pos, this.pos + take));
      this.pos += take;
      left -= take;
    }
  }

  /** Input offset of a view returned by `bytes`, or undefined for other arrays. */
  offsetOf(view: Uint8Array): number | undefined {
    if (view.buffer !== this.buf.buffer) return undefined;
    return this.base + (view.byteOffset - this.buf.byteOffset);
  }

  /**
   * Compares `bytes` with the input at `offset` while the buffer still holds it (the record just
   * read, as a rule: roundtrip compares its encoding so instead of reading the input a second
   * time): -1 when they are equal, else the index of the first difference; undefined when the
   * buffer no longer holds those bytes. `start` and `end`: only `bytes[start, end)` (a record
   * header in the writer's buffer), the index counted from `start`.
   */
  differenceAt(bytes: Uint8Array, offset: number, start = 0, end = bytes.length): number | undefined {
    const n = end - start;
    const from = offset - this.base;
    if (from < this.start || from + n > this.end) return undefined;
    const buf = this.buf;
    // short pieces (record headers) byte by byte: no view to make
    if (n > 64 && sameBytes(buf.subarray(from, from + n), bytes.subarray(start, end))) return -1;
    for (let i = 0; i < n; i++) if (buf[from + i] !== bytes[start + i]) return i;
    return -1;
  }

  /** The input offset of the first byte the buffer still holds. */
  get heldFrom(): number {
    return this.base + this.start;
  }

  /** True when `view` is this buffer's copy of the input at `offset` (a payload the decoder handed out, still in place). */
  holdsAt(view: Uint8Array, offset: number): boolean {
    const at = view.byteOffset - this.buf.byteOffset;
    // the buffer's identity last: `buffer` costs more than the arithmetic (a fifth of roundtrip's
    // time over validate's, a call a page), and a record header written from the encoder's
    // buffer fails on the offset already; the view `bytes` gave last is known to be the buffer's
    return (
      offset - this.base === at &&
      at >= this.start &&
      at + view.length <= this.end &&
      (view === this.lastBytes || view.buffer === this.buf.buffer)
    );
  }

  /** Buffered bytes from the current position (for bounded look-ahead scans). */
  window(): Uint8Array {
    return this.buf.subarray(this.pos, this.end);
  }
}

export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}
