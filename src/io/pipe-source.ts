/**
 * A pipe or socket given as the input (`cat x.mig | migstream dump -`, a FIFO): read on a
 * thread of its own once the stream proves long, so that reading the pipe and decoding what
 * was read overlap. A pipe holds 64 KiB; read from the decoding thread, the writer of the pipe
 * waited every time the decoder was busy, and the decoder waited every time the pipe was
 * empty. The thread keeps a ring of RING_BYTES full ahead of the decoder (memory stays
 * bounded: a full ring pauses the thread, and the pipe's writer with it).
 */
import { fstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { PipeReaderData } from './pipe-reader-worker.js';
import { createSharedRing, RingSource } from './shared-ring.js';
import { FileSource, type ByteSource } from './source.js';

/** Read by the decoding thread itself up to here: a short stream never pays for a thread's start (~30 ms). */
const HANDOFF_BYTES = 8 << 20;
const RING_BYTES = 16 << 20;

export class PipeSource implements ByteSource {
  readonly seekable = false;
  readonly size = undefined;
  /** stream offset at which the ring's first byte sits */
  private base = 0;
  private ring: RingSource | undefined;
  private worker: Worker | undefined;

  constructor(private readonly file: FileSource) {}

  get name(): string {
    return this.file.name;
  }

  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    if (!this.ring) {
      if (at < HANDOFF_BYTES) {
        return this.file.read(into, intoOffset, Math.min(length, HANDOFF_BYTES - at), at);
      }
      this.startThread(at);
    }
    return this.ring!.read(into, intoOffset, length, at - this.base);
  }

  private startThread(at: number): void {
    const ring = createSharedRing(RING_BYTES);
    // from here the reading thread owns the descriptor (its socket closes it)
    const workerData: PipeReaderData = { fd: this.file.release(), ring };
    // a worker inherits the process's Node options; --input-type (a program given with -e) makes it refuse its file
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    this.worker = new Worker(new URL('./pipe-reader-worker.js', import.meta.url), { workerData, execArgv });
    // the decoder's thread is blocked while it waits: the worker must not keep the process alive after
    this.worker.unref();
    this.base = at;
    this.ring = new RingSource(ring, this.file.name);
  }

  close(): void {
    this.ring?.close();
    void this.worker?.terminate();
    this.file.close();
  }
}

/**
 * A source for an input that is not a file: a FIFO or a socket gets the reading thread;
 * anything else (a terminal, a character device) is read as it is.
 */
export function streamSource(file: FileSource): ByteSource {
  const st = fstatSync(file.descriptor);
  return st.isFIFO() || st.isSocket() ? new PipeSource(file) : file;
}
