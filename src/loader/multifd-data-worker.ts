/**
 * A thread that decompresses compressed multifd packets for MultifdDataOffload: the packets
 * come as offsets into their channel's file (the validating thread has read and checked
 * their headers), are read again here with positional reads, and go through the channel's
 * decompressor in their order, exactly as MultifdJoin does it on its own thread. After a
 * packet that does not decompress to its pages a channel's stream is broken and its later
 * packets are not looked at (the same rule as there).
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { CompressedPages } from '../multifd/compressed-pages.js';
import { PAGE_COMPRESSIONS, type PageCompression } from '../multifd/page-compressions.js';
import type { DataCandidate, DataWorkerData, DataWorkerRequest, DataWorkerResult } from './multifd-data-protocol.js';

const data = workerData as DataWorkerData;
const done = new Int32Array(data.done);
/** cell 1 moves at every batch: the validating thread's sign that this worker is alive */
Atomics.add(done, 1, 1);

const methods = new Map<PageCompression['name'], PageCompression>(
  [...PAGE_COMPRESSIONS.values()].map((m) => [m.name, m]),
);
/** each channel's stream, once its first packet came */
const streams = new Map<number, CompressedPages>();
/** per channel, the first packet that failed */
const failed = new Map<number, number>();
let buf = Buffer.alloc(0);

function check(p: DataCandidate): void {
  if (failed.has(p.channel)) return;
  const method = methods.get(p.method);
  if (!method) throw new Error(`no decompressor for ${p.method}`);
  let stream = streams.get(p.channel);
  if (!stream) streams.set(p.channel, (stream = method.open()));
  if (buf.length < p.length) buf = Buffer.allocUnsafe(Math.max(p.length, buf.length * 2));
  let got = 0;
  while (got < p.length) {
    const n = readSync(p.fd, buf, got, p.length - got, p.offset + got);
    if (n === 0) throw new Error(`channel ${p.channel}: the file ends before the packet's data at ${p.offset + got}`);
    got += n;
  }
  if (!stream.packet(buf.subarray(0, p.length), p.pagesBytes)) failed.set(p.channel, p.seq);
}

function finish(result: DataWorkerResult): void {
  data.results.postMessage(result);
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
}

parentPort?.on('message', (m: DataWorkerRequest) => {
  try {
    if (m.type === 'packets') {
      for (const p of m.packets) check(p);
      Atomics.add(done, 1, 1);
    } else finish({ type: 'done', failed: [...failed] });
  } catch (e) {
    finish({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
});
