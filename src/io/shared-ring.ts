/**
 * Bytes handed from one thread to another through shared memory: one writer (the thread that
 * receives them from a socket, a pipe or any async source) and one reader (a worker running
 * the synchronous decoder). The writer waits without blocking its event loop
 * (`Atomics.waitAsync`); the reader blocks (`Atomics.wait`), which is what the codec's
 * pull-style ByteSource needs. The capacity bounds the memory whatever the stream's size:
 * a writer that finds the ring full waits for the reader, so a slow decoder slows its input
 * instead of growing a queue.
 */
import { UsageError } from '../model/errors.js';
import type { ByteSource } from './source.js';

/** Indexes into the control words. Positions count bytes modulo 2^32 (int32 arithmetic). */
const WRITTEN = 0;
const CONSUMED = 1;
/** 0 open; 1 the writer ended the bytes; 2 the writer failed (or the consumer went away) */
const STATE = 2;
/** bumped on every change the reader waits for, so that a change between its check and its wait is not missed */
const SIGNAL = 3;
/** how many bytes the waiting reader wants before it is woken (fewer wake it only at the end) */
const WANT = 4;
const CONTROL_WORDS = 5;

/**
 * A reader that has some bytes but wants more waits this long for them, then takes what
 * there is: each wake-up costs a few microseconds in both threads, and a stream arriving in
 * 64 KiB socket reads would otherwise wake the reader for every one of them.
 */
const GATHER_BYTES = 1 << 20;
const GATHER_MS = 2;

const OPEN = 0;
const ENDED = 1;
const FAILED = 2;

/** What both threads share; it can be posted to a worker as it is. */
export interface SharedRing {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

/** A ring of `capacity` bytes, rounded up to a power of two (positions wrap at 2^32). */
export function createSharedRing(capacity: number): SharedRing {
  let size = 4096;
  while (size < capacity && size < 1 << 30) size *= 2;
  return { control: new SharedArrayBuffer(CONTROL_WORDS * 4), data: new SharedArrayBuffer(size) };
}

/** The writing side: copies chunks in, waiting (asynchronously) while the ring is full. */
export class RingWriter {
  private readonly control: Int32Array;
  private readonly data: Uint8Array;
  private readonly mask: number;

  constructor(ring: SharedRing) {
    this.control = new Int32Array(ring.control);
    this.data = new Uint8Array(ring.data);
    this.mask = this.data.length - 1;
  }

  /** Copy as much of `chunk` as fits now; returns how many bytes went in. */
  tryWrite(chunk: Uint8Array): number {
    const written = Atomics.load(this.control, WRITTEN);
    const used = (written - Atomics.load(this.control, CONSUMED)) | 0;
    const n = Math.min(chunk.length, this.data.length - used);
    let at = written & this.mask;
    let done = 0;
    while (done < n) {
      const k = Math.min(n - done, this.data.length - at);
      this.data.set(chunk.subarray(done, done + k), at);
      done += k;
      at = (at + k) & this.mask;
    }
    this.commit(n);
    return n;
  }

  /** The ring's size in bytes. */
  get capacity(): number {
    return this.data.length;
  }

  /** Bytes written that the reader has not taken yet. */
  get unread(): number {
    return (Atomics.load(this.control, WRITTEN) - Atomics.load(this.control, CONSUMED)) | 0;
  }

  /** The reader is still there and the bytes have not ended. */
  get open(): boolean {
    return Atomics.load(this.control, STATE) === OPEN;
  }

  /**
   * Up to `length` bytes of the ring at the write position, not running past the ring's end:
   * a place for a socket to read into without a copy (`commit` hands them to the reader).
   * The caller keeps `length` within what the reader has made free (and what it still needs itself).
   */
  space(length: number): Uint8Array {
    const at = Atomics.load(this.control, WRITTEN) & this.mask;
    return this.data.subarray(at, at + Math.min(length, this.data.length - at));
  }

  /** `n` more bytes at the write position are the reader's (written there by `tryWrite` or into `space`). */
  commit(n: number): void {
    if (n <= 0) return;
    const written = Atomics.load(this.control, WRITTEN);
    const used = (written - Atomics.load(this.control, CONSUMED)) | 0;
    Atomics.store(this.control, WRITTEN, (written + n) | 0);
    Atomics.add(this.control, SIGNAL, 1);
    // wake the reader only once it has what it waits for (it times out for less)
    if (used + n >= Atomics.load(this.control, WANT)) Atomics.notify(this.control, SIGNAL);
  }

  /** Copy all of `chunk` in; resolves once the reader has made room for the last of it. */
  async write(chunk: Uint8Array): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      if (Atomics.load(this.control, STATE) !== OPEN) return;
      const consumed = Atomics.load(this.control, CONSUMED);
      const n = this.tryWrite(rest);
      rest = rest.subarray(n);
      if (rest.length > 0 && n === 0) {
        const wait = Atomics.waitAsync(this.control, CONSUMED, consumed);
        if (wait.async) await wait.value;
      }
    }
  }

  /** No more bytes: the reader sees the end once it has read what is there. */
  end(): void {
    Atomics.compareExchange(this.control, STATE, OPEN, ENDED);
    this.signal();
  }

  /** The input failed or nobody reads any more: the reader's next wait fails, a waiting writer wakes. */
  abort(): void {
    Atomics.store(this.control, STATE, FAILED);
    this.signal();
    Atomics.notify(this.control, CONSUMED);
  }

  private signal(): void {
    Atomics.add(this.control, SIGNAL, 1);
    Atomics.notify(this.control, SIGNAL);
  }
}

/**
 * The reading side as a ByteSource: a sequential stream that blocks its thread until bytes
 * arrive or the writer ends them. Use it only off the main thread.
 */
export class RingSource implements ByteSource {
  readonly seekable = false;
  readonly size = undefined;
  private readonly control: Int32Array;
  private readonly data: Uint8Array;
  private readonly mask: number;
  /** absolute stream position of the next unread byte */
  private position = 0;
  /** called before the reader blocks on an empty ring: what was decoded so far can be passed on then */
  onStarve: (() => void) | undefined;

  constructor(
    ring: SharedRing,
    readonly name = '<stream>',
  ) {
    this.control = new Int32Array(ring.control);
    this.data = new Uint8Array(ring.data);
    this.mask = this.data.length - 1;
  }

  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    // the reader never goes backwards; a skip forward reads and drops the bytes in between
    while (this.position < at) {
      const k = this.take(undefined, 0, Math.min(at - this.position, this.data.length));
      if (k === 0) return 0;
    }
    return this.take(into, intoOffset, length);
  }

  /**
   * Up to `length` bytes (into `into`, or dropped), waiting for at least one; 0 at the end.
   * With fewer than it asked for (up to GATHER_BYTES) it first waits GATHER_MS for more.
   */
  private take(into: Uint8Array | undefined, intoOffset: number, length: number): number {
    const enough = Math.min(length, GATHER_BYTES);
    let gathered = false;
    for (;;) {
      // the state is read before the bytes: a writer fills the ring before it ends it
      const signal = Atomics.load(this.control, SIGNAL);
      const state = Atomics.load(this.control, STATE);
      const consumed = Atomics.load(this.control, CONSUMED);
      const written = Atomics.load(this.control, WRITTEN);
      const available = (written - consumed) | 0;
      if (available > 0 && available < enough && state === OPEN && !gathered) {
        gathered = true;
        Atomics.store(this.control, WANT, enough);
        this.onStarve?.();
        Atomics.wait(this.control, SIGNAL, signal, GATHER_MS);
        continue;
      }
      if (available > 0) {
        const n = Math.min(length, available);
        let at = consumed & this.mask;
        let done = 0;
        while (done < n) {
          const k = Math.min(n - done, this.data.length - at);
          into?.set(this.data.subarray(at, at + k), intoOffset + done);
          done += k;
          at = (at + k) & this.mask;
        }
        Atomics.store(this.control, CONSUMED, (consumed + n) | 0);
        Atomics.notify(this.control, CONSUMED);
        this.position += n;
        return n;
      }
      if (state === ENDED) return 0;
      if (state === FAILED) throw new UsageError(`${this.name}: the input failed before its end`);
      Atomics.store(this.control, WANT, 1);
      this.onStarve?.();
      Atomics.wait(this.control, SIGNAL, signal);
    }
  }

  close(): void {}
}
