/**
 * Compressed multifd channels decompressed in parallel: MultifdJoin reads the channels one
 * after the other and checks every packet header on its thread, but hands each compressed
 * packet (where its data lies in the channel's file) to a worker thread, which decompresses
 * it (multifd-data-worker.ts). Channel i goes to worker i mod N (N: the cores, at most 4, or
 * the threads asked for), so the channels' streams are followed side by side while the headers
 * are still being read. Decompression is where a compressed set's time goes: on one thread,
 * validation took 1.7-1.8 s (in process) for the bench's 4 zlib channels of 256 MiB of pages,
 * while `migstream validate` of 4 uncompressed channels of 1 GiB took 0.25-0.32 s.
 *
 * The verdict does not change: each channel's packets still go through one decompressor in
 * their order, and a failure is put where MultifdJoin would have reported it.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { FileSource, type ByteSource } from '../io/source.js';
import type { PageCompression } from '../multifd/page-compressions.js';
import type { DataCandidate, DataWorkerData, DataWorkerResult } from './multifd-data-protocol.js';
import { workerExecArgv } from './worker-options.js';

/**
 * Below this many bytes of channels together, a worker's start (about 40 ms here) would cost
 * more than it saves. Compressed channels are what a worker is for, and they are small for
 * the pages they carry (256 MiB of pages: 136 MB of zlib channels in the bench, half of each
 * page random; 2.6 MB when the pages were nearly empty). A worker starts with the first
 * compressed packet of its channels: uncompressed channels never start one.
 */
export const OFFLOAD_MIN_CHANNEL_BYTES = 1 << 20;

/** Workers when none are asked for: each costs about 20 MiB (a V8 isolate, pako, its young generation held to 2 MiB). */
const MAX_WORKERS = 4;

/** Packets are posted to a worker in batches of this many. */
const BATCH = 64;

/**
 * A worker that has neither finished nor moved on for this long is taken for dead (it could
 * not load, or died): this thread cannot see a worker's error event while it waits for it.
 */
const WORKER_SILENCE_MS = 30_000;

interface RunningWorker {
  worker: Worker;
  results: MessagePort;
  done: Int32Array;
  pending: DataCandidate[];
}

export class MultifdDataOffload {
  private readonly workers: (RunningWorker | undefined)[];
  private readonly seq: number[] = [];
  private closed = false;

  /**
   * An offload for these channels when they are regular files, or undefined (a pipe is read
   * once, by MultifdJoin). `threads`: 1 never offloads, N >= 2 always, to up to N workers;
   * undefined (auto) when the channels add up to OFFLOAD_MIN_CHANNEL_BYTES, to as many workers
   * as the machine has cores (at most MAX_WORKERS), on two cores or more.
   */
  static forChannels(channels: readonly { source: ByteSource }[], threads?: number): MultifdDataOffload | undefined {
    if (threads === 1 || channels.length === 0) return undefined;
    if (threads !== undefined && !(Number.isSafeInteger(threads) && threads >= 1))
      throw new RangeError(`threads: a whole number from 1 (got ${threads})`);
    const fds = channels.map((ch) => (ch.source instanceof FileSource ? ch.source.fileDescriptor : undefined));
    if (fds.some((fd) => fd === undefined)) return undefined;
    let workers = threads;
    if (workers === undefined) {
      const bytes = channels.reduce((n, ch) => n + (ch.source.size ?? 0), 0);
      const cores = availableParallelism();
      if (bytes < OFFLOAD_MIN_CHANNEL_BYTES || cores < 2) return undefined;
      workers = Math.min(cores, MAX_WORKERS);
    }
    return new MultifdDataOffload(fds as number[], Math.min(workers, channels.length));
  }

  private constructor(
    private readonly fds: readonly number[],
    workerCount: number,
  ) {
    this.workers = Array.from({ length: workerCount }, () => undefined);
  }

  /** Hand over a packet of channel `channel` whose data (`length` bytes at `offset`) must decompress to `pagesBytes`; returns its number in the channel. */
  packet(channel: number, method: PageCompression['name'], offset: number, length: number, pagesBytes: number): number {
    const seq = this.seq[channel] ?? 0;
    this.seq[channel] = seq + 1;
    const fd = this.fds[channel];
    if (fd === undefined) throw new Error(`multifd channel ${channel} was not given to the offload`);
    const w = this.worker(channel % this.workers.length);
    w.pending.push({ channel, fd, method, offset, length, pagesBytes, seq });
    if (w.pending.length >= BATCH) this.post(w);
    return seq;
  }

  /**
   * Wait for every worker to have decompressed what it was given: per channel the number of
   * its first packet that did not decompress to its pages. Blocks this thread (the validation
   * is synchronous); the workers are stopped afterwards.
   */
  failures(): Map<number, number> {
    const failed = new Map<number, number>();
    try {
      for (const w of this.workers) {
        if (!w) continue;
        this.post(w);
        w.worker.postMessage({ type: 'end' });
      }
      for (const w of this.workers) {
        if (!w) continue;
        waitFor(w.done);
        const result = receiveMessageOnPort(w.results)?.message as DataWorkerResult | undefined;
        if (!result) throw new Error('a multifd decompression worker ended without its result');
        if (result.type === 'error') throw new Error(`a multifd decompression worker failed: ${result.message}`);
        for (const [channel, seq] of result.failed) failed.set(channel, seq);
      }
    } finally {
      this.close();
    }
    return failed;
  }

  /** Stop the workers (their work is dropped); nothing is offloaded afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) {
      if (!w) continue;
      w.results.close();
      void w.worker.terminate();
    }
  }

  private post(w: RunningWorker): void {
    if (w.pending.length === 0) return;
    w.worker.postMessage({ type: 'packets', packets: w.pending });
    w.pending = [];
  }

  /** Worker `i`, started the first time a channel of its has a compressed packet. */
  private worker(i: number): RunningWorker {
    if (this.closed) throw new Error('the multifd decompression workers are stopped');
    const have = this.workers[i];
    if (have) return have;
    const done = new SharedArrayBuffer(8);
    const { port1, port2 } = new MessageChannel();
    const workerData: DataWorkerData = { done, results: port2 };
    const worker = new Worker(new URL('./multifd-data-worker.js', import.meta.url), {
      workerData,
      transferList: [port2],
      // little to collect (pako writes into the packet's buffer): a small young generation keeps
      // each worker's memory down (validate of the bench's zlib set: 122-131 MiB without the
      // limit, 104-120 MiB with it)
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
      execArgv: workerExecArgv(),
    });
    // nothing here waits for its events: failures() asks synchronously (and notices a worker
    // that died by its silence); an error event must not become an uncaught exception later
    worker.on('error', () => undefined);
    worker.unref();
    port1.unref();
    const w: RunningWorker = { worker, results: port1, done: new Int32Array(done), pending: [] };
    this.workers[i] = w;
    return w;
  }
}

/** Wait until a worker sets its done cell (0), while its progress cell (1) keeps moving. */
function waitFor(cells: Int32Array): void {
  let progress = Atomics.load(cells, 1);
  let quiet = 0;
  while (Atomics.load(cells, 0) === 0) {
    const slice = 1000;
    if (Atomics.wait(cells, 0, 0, slice) !== 'timed-out') continue;
    const now = Atomics.load(cells, 1);
    if (now !== progress) {
      progress = now;
      quiet = 0;
    } else if ((quiet += slice) >= WORKER_SILENCE_MS)
      throw new Error(`a multifd decompression worker did not answer for ${WORKER_SILENCE_MS / 1000} s`);
  }
}
