import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { enlargePipe } from './pipe-size.js';

/**
 * Where bytes come from. `read` fills `into` from absolute position `at` and returns how
 * many bytes it got (0 = end). Sequential sources ignore `at` beyond checking it moves
 * forward; the reader only ever asks for the next bytes or skips ahead.
 */
export interface ByteSource {
  readonly name: string;
  /** total size when known (regular files, buffers) */
  readonly size: number | undefined;
  /** true when `read` may jump forward without reading the bytes in between */
  readonly seekable: boolean;
  /** Fill `into` from `intoOffset` with up to `length` bytes of the stream at absolute position `at`; returns how many (0 at the end). */
  read(into: Uint8Array, intoOffset: number, length: number, at: number): number;
  /** Release what the source holds (a file descriptor); reading after it fails. */
  close(): void;
  /**
   * true when the bytes are a libvirt save image whose gzip body this source inflates: the
   * header still says gzip, and the decoder reads on instead of refusing it
   */
  readonly libvirtBodyInflated?: boolean;
}

export class BufferSource implements ByteSource {
  readonly seekable = true;
  readonly size: number;
  /** `origin`: the absolute offset of data[0], for buffers cut out of a larger stream */
  constructor(
    private readonly data: Uint8Array,
    readonly name = '<buffer>',
    readonly origin = 0,
  ) {
    this.size = origin + data.length;
  }
  /** The bytes, when they are a whole stream (not cut out of a larger one). */
  whole(): Uint8Array | undefined {
    return this.origin === 0 ? this.data : undefined;
  }

  /** Fill `into` from `intoOffset` with up to `length` bytes of the stream at absolute position `at`; returns how many (0 at the end). */
  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    const rel = at - this.origin;
    if (rel >= this.data.length) return 0;
    const n = Math.min(length, this.data.length - rel);
    into.set(this.data.subarray(rel, rel + n), intoOffset);
    return n;
  }
  /** Release what the source holds (a file descriptor); reading after it fails. */
  close(): void {}
}

/**
 * A file, or a pipe such as stdin ("-"), read with blocking positional reads. A pipe is asked
 * to hold 1 MiB when it is opened (src/io/pipe-size.ts: a perl helper, where there is one).
 */
export class FileSource implements ByteSource {
  readonly seekable: boolean;
  readonly size: number | undefined;
  private fd: number;
  private sequentialPos = 0;

  constructor(readonly name: string) {
    this.fd = name === '-' ? 0 : openSync(name, 'r');
    const st = fstatSync(this.fd);
    if (st.isDirectory()) {
      closeSync(this.fd);
      throw Object.assign(new Error(`${name}: is a directory`), { code: 'EISDIR', syscall: 'open', path: name });
    }
    this.seekable = st.isFile();
    this.size = st.isFile() ? st.size : undefined;
    // a pipe (stdin, a FIFO given by path): larger, so that its writer and we seldom wait for each other
    if (st.isFIFO()) enlargePipe(this.fd);
  }

  /** Fill `into` from `intoOffset` with up to `length` bytes of the stream at absolute position `at`; returns how many (0 at the end). */
  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    if (this.seekable) return readSync(this.fd, into, intoOffset, length, at);
    // A pipe: discard up to `at`, then read. The reader never asks to go backwards.
    while (this.sequentialPos < at) {
      const n = readSyncRetry(this.fd, into, intoOffset, Math.min(length, at - this.sequentialPos));
      if (n === 0) return 0;
      this.sequentialPos += n;
    }
    const n = readSyncRetry(this.fd, into, intoOffset, length);
    this.sequentialPos += n;
    return n;
  }

  /**
   * The descriptor of a regular file, for positional reads by another thread of this process
   * (src/loader/multifd-data-offload.ts); undefined for a pipe, whose bytes are read once.
   */
  get fileDescriptor(): number | undefined {
    return this.seekable && this.fd >= 0 ? this.fd : undefined;
  }

  /** Release what the source holds (a file descriptor); reading after it fails. */
  close(): void {
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function readSyncRetry(fd: number, into: Uint8Array, off: number, len: number): number {
  for (;;) {
    try {
      return readSync(fd, into, off, len, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        // non-blocking stdin: wait briefly for data instead of spinning
        Atomics.wait(sleepCell, 0, 0, 0.1);
        continue;
      }
      if (code === 'EOF') return 0;
      throw e;
    }
  }
}

/** Read up to n bytes at an absolute position, looping over short reads; returns how many arrived. */
export function readAt(src: ByteSource, into: Uint8Array, n: number, at: number): number {
  let got = 0;
  while (got < n) {
    const k = src.read(into, got, n - got, at + got);
    if (k === 0) break;
    got += k;
  }
  return got;
}
