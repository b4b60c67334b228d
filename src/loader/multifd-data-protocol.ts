/**
 * Messages between MultifdDataOffload (the validating thread) and multifd-data-worker.ts (a
 * thread that decompresses compressed multifd packets). The validating thread reads every
 * channel and decides which packets must decompress to their pages; a worker reads those
 * packets' data again from the channel's file, by offset, and decompresses them in order.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PageCompression } from '../multifd/page-compressions.js';

/** One packet whose data must decompress to exactly `pagesBytes` bytes, given its channel's packets before it. */
export interface DataCandidate {
  /** the channel's index among the channels given */
  channel: number;
  /** the channel file's descriptor (shared with the worker: it reads with positional reads) */
  fd: number;
  method: PageCompression['name'];
  /** where the packet's data starts in the channel, and its length */
  offset: number;
  length: number;
  pagesBytes: number;
  /** the candidate's number in its channel (0, 1, ...) */
  seq: number;
}

export type DataWorkerRequest = { type: 'packets'; packets: DataCandidate[] } | { type: 'end' };

/** The worker's answer to `end`: per channel the first packet (its seq) that did not decompress, or an error of its own. */
export type DataWorkerResult =
  { type: 'done'; failed: [channel: number, seq: number][] } | { type: 'error'; message: string };

/** What the worker is started with. */
export interface DataWorkerData {
  /** two int32 cells: the worker sets 0 to 1 once its result is posted on `results` (and wakes the waiter), and adds to 1 as it works */
  done: SharedArrayBuffer;
  results: MessagePort;
}
