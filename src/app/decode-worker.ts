/**
 * The worker half of `decode()` for asynchronous inputs: the synchronous decoder reads a
 * SharedRing (blocking this thread, never the caller's) and posts records back in batches.
 * Batches are paced by credits the caller returns as it consumes them, so a slow consumer
 * stops the decoder, and a stopped decoder stops the input: memory stays bounded. A batch
 * is also posted whenever the decoder waits for input, so records of a live input are not held
 * back until a batch fills.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openMainStream } from '../codec/open.js';
import { RingSource } from '../io/shared-ring.js';
import { StreamError, UsageError } from '../model/errors.js';
import type { MainRecord } from '../model/records.js';
import { parseVmDescription } from '../vmstate/vmdesc.js';
import type { DecodeWorkerData, DecodeWorkerMessage } from './decode-protocol.js';

/** A batch is posted at this many records or this many bytes of record data, whichever comes first. */
const BATCH_RECORDS = 512;
const BATCH_BYTES = 1 << 20;

function post(message: DecodeWorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(message, transfer);
}

/** Wait for a credit (a batch the caller has consumed), then spend it. */
function takeCredit(credits: Int32Array): void {
  for (;;) {
    const have = Atomics.load(credits, 0);
    if (have > 0) {
      if (Atomics.compareExchange(credits, 0, have, have - 1) === have) return;
      continue;
    }
    Atomics.wait(credits, 0, have);
  }
}

/**
 * Give the record its own copies of the byte arrays it points into (the reader reuses its
 * buffer), so that posting it moves those bytes and nothing else: structured clone of a view
 * copies the whole buffer under it.
 */
function ownBytes(value: unknown, transfer: Set<ArrayBuffer>): unknown {
  if (value instanceof Uint8Array) {
    const own = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice();
    if (own.buffer instanceof ArrayBuffer) transfer.add(own.buffer);
    return own;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = ownBytes(value[i], transfer);
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = ownBytes(o[k], transfer);
  }
  return value;
}

function run(data: DecodeWorkerData): void {
  const credits = new Int32Array(data.credits);
  const source = new RingSource(data.ring, data.name);
  const stream = openMainStream(source, {
    vmdesc: data.vmdescJson === undefined ? undefined : parseVmDescription(data.vmdescJson),
    pageSize: data.pageSize,
    capabilities: data.capabilities,
    copyData: true,
  });
  let batch: MainRecord[] = [];
  // a set: a batch holds hundreds of page buffers, each listed once
  let transfer = new Set<ArrayBuffer>();
  let bytes = 0;
  let warningsSent = 0;
  const flush = () => {
    for (; warningsSent < stream.warnings.length; warningsSent++) {
      const warning = stream.warnings[warningsSent];
      if (warning) post({ type: 'warning', warning });
    }
    if (batch.length === 0) return;
    takeCredit(credits);
    post({ type: 'records', records: batch }, [...transfer]);
    batch = [];
    transfer = new Set();
    bytes = 0;
  };
  // a live input (a relay) gets its records as soon as the decoder has caught up with the bytes
  source.onStarve = flush;
  try {
    for (const rec of stream.records()) {
      batch.push(ownBytes(rec, transfer) as MainRecord);
      bytes += rec.length;
      if (batch.length >= BATCH_RECORDS || bytes >= BATCH_BYTES) flush();
    }
  } finally {
    // the records before an error are delivered before it
    flush();
  }
  post({ type: 'end', bytes: stream.reader.offset });
}

try {
  run(workerData as DecodeWorkerData);
} catch (e) {
  if (e instanceof StreamError) post({ type: 'error', stream: e.toJSON() });
  else if (e instanceof UsageError) post({ type: 'error', usage: e.message });
  else post({ type: 'error', internal: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
