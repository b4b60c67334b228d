import { closeSync, openSync } from 'node:fs';
import { writeAllSync } from './write-all.js';
import { readAt, type ByteSource } from './source.js';
import { firstDifference } from './bytes.js';

/** Where encoded bytes go. Chunks are only valid during the call. */
export interface ByteSink {
  /** Take these bytes (in order, all of them). */
  write(chunk: Uint8Array): void;
  /**
   * Take `buf[start, end)`, as `write(buf.subarray(start, end))` would: a sink that only reads
   * the bytes takes them without a view made for it (StreamWriter flushes a record header a
   * page when payloads go to the sink directly).
   */
  writeRange?(buf: Uint8Array, start: number, end: number): void;
  /** No more bytes: flush and release. */
  close(): void;
}

export class FileSink implements ByteSink {
  private fd: number;
  constructor(readonly name: string) {
    this.fd = name === '-' ? 1 : openSync(name, 'w');
  }
  write(chunk: Uint8Array): void {
    writeAllSync(this.fd, chunk);
  }
  close(): void {
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
  }
}

export class MemorySink implements ByteSink {
  private parts: Uint8Array[] = [];
  private total = 0;
  write(chunk: Uint8Array): void {
    this.parts.push(chunk.slice());
    this.total += chunk.length;
  }
  close(): void {}
  bytes(): Uint8Array {
    const out = new Uint8Array(this.total);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** The source's bytes that are in memory already (the decoder's buffer: StreamReader has both). */
export interface HeldInput {
  /**
   * -1 when `bytes[start, end)` (all of them by default) equal the held bytes at `offset`, else
   * the index of the first difference from `start`; undefined when not held
   */
  differenceAt(bytes: Uint8Array, offset: number, start?: number, end?: number): number | undefined;
  /** `view` is the held copy of the bytes at `offset` itself (then it equals them: nothing to compare) */
  holdsAt(view: Uint8Array, offset: number): boolean;
  /** the offset of the first byte held: a piece that begins before it is held from there on, if at all */
  readonly heldFrom: number;
}

/**
 * Compares what is written with an existing source, without storing either: the
 * round-trip check for streams of any size. Remembers the first differing offset.
 * With `held`, the source's bytes the decoder still holds are compared in memory and the source
 * is read only for the others.
 */
export class CompareSink implements ByteSink {
  private pos = 0;
  private scratch = new Uint8Array(1 << 20);
  firstDifference: number | undefined;

  constructor(
    private readonly expected: ByteSource,
    private readonly held?: HeldInput,
  ) {}

  write(chunk: Uint8Array): void {
    if (this.firstDifference !== undefined) return;
    // a payload written from the decoder's buffer at its own offset: the input's bytes themselves
    if (this.held?.holdsAt(chunk, this.pos)) {
      this.pos += chunk.length;
      return;
    }
    const difference = this.held?.differenceAt(chunk, this.pos);
    if (difference !== undefined) {
      if (difference >= 0) this.firstDifference = this.pos + difference;
      else this.pos += chunk.length;
      return;
    }
    // a piece whose start the decoder has let go (it refilled in the middle of a record): the
    // start from the source, the rest from what is held
    const split = this.held ? this.held.heldFrom - this.pos : 0;
    if (split > 0 && split < chunk.length) {
      this.write(chunk.subarray(0, split));
      this.write(chunk.subarray(split));
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      const want = Math.min(chunk.length - off, this.scratch.length);
      const got = readAt(this.expected, this.scratch, want, this.pos);
      const a = Buffer.from(this.scratch.buffer, this.scratch.byteOffset, got);
      const b = Buffer.from(chunk.buffer, chunk.byteOffset + off, want);
      if (got !== want || a.compare(b) !== 0) {
        // slow path only once: find the first differing byte (or the end of the shorter input)
        this.firstDifference = this.pos + firstDifference(a, b);
        return;
      }
      off += want;
      this.pos += want;
    }
  }

  writeRange(buf: Uint8Array, start: number, end: number): void {
    if (this.firstDifference !== undefined) return;
    const difference = this.held?.differenceAt(buf, this.pos, start, end);
    if (difference === undefined) {
      this.write(buf.subarray(start, end));
      return;
    }
    if (difference >= 0) this.firstDifference = this.pos + difference;
    else this.pos += end - start;
  }

  /** Call after the last write: a longer original also differs (at the end of ours). */
  finish(): number | undefined {
    if (this.firstDifference === undefined) {
      const got = this.expected.read(this.scratch, 0, 1, this.pos);
      if (got > 0) this.firstDifference = this.pos;
    }
    return this.firstDifference;
  }

  close(): void {}
}

const DEFAULT_CAPACITY = 1 << 20;

/** Buffered writer mirroring StreamReader. `position` is the absolute output offset. */
export class StreamWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;
  private flushed = 0;

  /**
   * `directFrom`: byte arrays of at least this length go to the sink as they are, after what is
   * buffered, instead of being copied into the buffer (a comparing sink has no use for the copy).
   */
  constructor(
    readonly sink: ByteSink,
    capacity = DEFAULT_CAPACITY,
    private readonly directFrom = Infinity,
  ) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  get position(): number {
    return this.flushed + this.len;
  }

  private room(n: number): void {
    if (this.len + n > this.buf.length) this.flush();
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.len++] = v;
  }
  be16(v: number): void {
    this.room(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
  }
  be32(v: number): void {
    this.room(4);
    this.view.setUint32(this.len, v >>> 0);
    this.len += 4;
  }
  be64(v: bigint): void {
    this.room(8);
    this.view.setBigUint64(this.len, BigInt.asUintN(64, v));
    this.len += 8;
  }
  le32(v: number): void {
    this.room(4);
    this.view.setUint32(this.len, v >>> 0, true);
    this.len += 4;
  }
  le64(v: bigint): void {
    this.room(8);
    this.view.setBigUint64(this.len, BigInt.asUintN(64, v), true);
    this.len += 8;
  }
  be64Words(hi: number, lo: number): void {
    this.room(8);
    this.view.setUint32(this.len, hi >>> 0);
    this.view.setUint32(this.len + 4, lo >>> 0);
    this.len += 8;
  }
  /** be64 of a non-negative safe integer */
  be64Number(v: number): void {
    this.be64Words(Math.floor(v / 0x1_0000_0000), v % 0x1_0000_0000);
  }
  bytes(b: Uint8Array): void {
    if (b.length >= this.directFrom) {
      this.flush();
      this.sink.write(b);
      this.flushed += b.length;
      return;
    }
    if (b.length > this.buf.length - this.len) {
      this.flush();
      if (b.length > this.buf.length) {
        this.sink.write(b);
        this.flushed += b.length;
        return;
      }
    }
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  counted(s: string): void {
    this.u8(s.length);
    for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i) & 0xff);
  }
  /** Zero-fill up to an absolute offset (mapped-ram areas: holes of a sparse file). */
  fillTo(abs: number): void {
    while (this.position < abs) {
      this.room(1);
      const n = Math.min(abs - this.position, this.buf.length - this.len);
      this.buf.fill(0, this.len, this.len + n);
      this.len += n;
    }
  }
  flush(): void {
    if (this.len > 0) {
      if (this.sink.writeRange) this.sink.writeRange(this.buf, 0, this.len);
      else this.sink.write(this.buf.subarray(0, this.len));
      this.flushed += this.len;
      this.len = 0;
    }
  }
}
