/**
 * The worker half of `decode()` for asynchronous inputs: the synchronous decoder reads a
 * SharedRing (blocking this thread, never the caller's) and posts records back in batches.
 * Batches are paced by credits the caller returns as it consumes them, so a slow consumer
 * stops the decoder, and a stopped decoder stops the input: memory stays bounded. A batch
 * is also posted whenever the decoder waits for input, so records of a live input are not held
 * back until a batch fills.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { RingSource } from '../io/shared-ring.js';
import { ReferenceLoader } from '../loader/load.js';
import { diagnosticJson } from '../model/diagnostic.js';
import { StreamError, UsageError } from '../model/errors.js';
import type { MainRecord } from '../model/records.js';
import { parseVmDescription } from '../vmstate/vmdesc.js';
import type { DecodeWorkerData, DecodeWorkerMessage, JudgeRequest, LiveNote } from './decode-protocol.js';

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
  const source = new RingSource(data.ring, data.name);
  const stream = openMainStream(source, {
    vmdesc: data.vmdescJson === undefined ? undefined : parseVmDescription(data.vmdescJson),
    pageSize: data.pageSize,
    capabilities: data.capabilities,
    // judged records stay here: only records posted back need bytes of their own
    copyData: !data.judge,
  });
  if (data.judge) judge(stream, source, data.judge, new Int32Array(data.credits));
  else deliver(stream, source, new Int32Array(data.credits));
  post({ type: 'end', bytes: stream.reader.offset });
}

/** decode(): post the records themselves, in batches. */
function deliver(stream: OpenedStream, source: RingSource, credits: Int32Array): void {
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
}

/**
 * judgeLive(): run the reference loader here and post only what a watcher needs: the
 * sections, commands and ends of stream, the loader's diagnostics, and how far it has judged.
 * A stream error is the loader's to judge too, like the end of the stream.
 */
function judge(stream: OpenedStream, source: RingSource, request: JudgeRequest, credits: Int32Array): void {
  const loader = new ReferenceLoader({ capabilities: request.capabilities, profile: request.profile });
  let notes: LiveNote[] = [];
  let through = 0;
  let posted = 0;
  let records = 0;
  const flush = () => {
    if (notes.length === 0 && through === posted) return;
    takeCredit(credits);
    post({ type: 'notes', notes, through });
    notes = [];
    posted = through;
    records = 0;
  };
  source.onStarve = flush;
  const said = (before: number, offset: number) => {
    for (let i = before; i < loader.diagnostics.length; i++) {
      const d = loader.diagnostics[i];
      if (d) notes.push({ note: 'diagnostic', offset, clean: through, diagnostic: diagnosticJson(d) });
    }
  };
  // what the loader says of the destination's settings alone (switchover-ack without return-path)
  said(0, 0);
  try {
    for (const rec of stream.records()) {
      const before = loader.diagnostics.length;
      loader.add(rec);
      const note = liveNote(rec);
      if (note) notes.push(note);
      said(before, rec.offset);
      // records inside MIG_CMD_PACKAGED have channel offsets too (the command record is its header)
      through = Math.max(through, rec.offset + rec.length);
      if (++records >= BATCH_RECORDS) flush();
    }
    const before = loader.diagnostics.length;
    loader.finish();
    said(before, stream.reader.offset);
    if (loader.diagnostics.length === before) through = stream.reader.offset;
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    const before = loader.diagnostics.length;
    loader.streamError(e);
    said(before, e.offset);
  } finally {
    flush();
  }
}

/** The records a live watcher is told about. */
function liveNote(rec: MainRecord): LiveNote | undefined {
  const packaged = rec.depth ? { packaged: true as const } : {};
  if (rec.kind === 'section')
    return {
      note: 'section',
      offset: rec.offset,
      section: rec.section,
      sectionId: rec.sectionId,
      idstr: rec.idstr,
      ...packaged,
    };
  if (rec.kind === 'command') return { note: 'command', offset: rec.offset, command: rec.name, ...packaged };
  if (rec.kind === 'eof') return { note: 'eof', offset: rec.offset, ...packaged };
  return undefined;
}

try {
  run(workerData as DecodeWorkerData);
} catch (e) {
  if (e instanceof StreamError) post({ type: 'error', stream: e.toJSON() });
  else if (e instanceof UsageError) post({ type: 'error', usage: e.message });
  else post({ type: 'error', internal: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
