/**
 * The worker half of `decode()` for asynchronous inputs: the synchronous decoder reads a
 * SharedRing (blocking this thread, never the caller's) and posts records back in batches.
 * Batches are paced by credits the caller returns as it consumes them, so a slow consumer
 * stops the decoder, and a stopped decoder stops the input: memory stays bounded. A batch
 * is also posted whenever the decoder waits for input, so records of a live input are not held
 * back until a batch fills.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ramStreamBytes } from '../generator/synthetic-ram.js';
import { BufferSource } from '../io/source.js';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { RingSource } from '../io/shared-ring.js';
import { ReferenceLoader } from '../loader/load.js';
import { MultifdJoin } from '../loader/multifd-load.js';
import { MultifdFlag } from '../../grammar/multifd.js';
import { cString } from '../multifd/codec.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { diagnosticJson } from '../model/diagnostic.js';
import { StreamError, UsageError } from '../model/errors.js';
import type { MainRecord } from '../model/records.js';
import { parseVmDescription } from '../vmstate/vmdesc.js';
import { MainChannelWatch } from './live-watch.js';
import type { DecodeWorkerData, DecodeWorkerMessage, JudgeRequest, LiveNote } from './decode-protocol.js';

/** A batch is posted at this many records or this many bytes of record data, whichever comes first. */
const BATCH_RECORDS = 512;
const BATCH_BYTES = 1 << 20;

function post(message: DecodeWorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(message, transfer);
}

/** Spend a credit if there is one, without waiting. */
function tryTakeCredit(credits: Int32Array): boolean {
  for (;;) {
    const have = Atomics.load(credits, 0);
    if (have <= 0) return false;
    if (Atomics.compareExchange(credits, 0, have, have - 1) === have) return true;
  }
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
  if (data.multifd !== undefined) {
    judgeMultifd(source, data.multifd, data.pageSize, new Int32Array(data.credits));
    post({ type: 'end', bytes: 0 });
    return;
  }
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
  const watch = new MainChannelWatch();
  const batch = new NoteBatch(credits);
  source.onStarve = () => batch.flush(true);
  const said = (before: number, offset: number) => {
    for (let i = before; i < loader.diagnostics.length; i++) {
      const d = loader.diagnostics[i];
      if (d) batch.notes.push({ note: 'diagnostic', offset, clean: batch.through, diagnostic: diagnosticJson(d) });
    }
  };
  // what the loader says of the destination's settings alone (switchover-ack without return-path)
  said(0, 0);
  try {
    for (const rec of stream.records()) {
      const before = loader.diagnostics.length;
      loader.add(rec);
      for (const note of watch.notes(rec)) batch.notes.push(note);
      said(before, rec.offset);
      // records inside MIG_CMD_PACKAGED have channel offsets too (the command record is its header)
      batch.through = Math.max(batch.through, rec.offset + rec.length);
      batch.counted();
    }
    const before = loader.diagnostics.length;
    loader.finish();
    said(before, stream.reader.offset);
    if (loader.diagnostics.length === before) batch.through = stream.reader.offset;
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    const before = loader.diagnostics.length;
    loader.streamError(e);
    said(before, e.offset);
  } finally {
    batch.flush(true);
  }
}

/** A live judge's notes, posted in batches as credits allow. */
class NoteBatch {
  notes: LiveNote[] = [];
  /** every byte before it belongs to a record judged so far */
  through = 0;
  private posted = 0;
  private records = 0;

  constructor(private readonly credits: Int32Array) {}

  /** One more record judged: a batch goes out every BATCH_RECORDS. */
  counted(): void {
    if (++this.records >= BATCH_RECORDS) this.flush(false);
  }

  /**
   * Post what there is. `wait`: for a credit, if none is left. Notes always wait; progress
   * alone (`through`) waits only where the judge has nothing else to do (it waits for input,
   * or the stream ended), so that a caller slow to take batches (a relay busy moving bytes)
   * does not stop a judge that has bytes to read; skipped, it goes with a later batch.
   * Progress must reach the caller before the judge waits for input: a caller holding bytes
   * until they are judged (tap --stop-on-error) sends more only then.
   */
  flush(wait: boolean): void {
    if (this.notes.length === 0 && this.through === this.posted) return;
    if (this.notes.length > 0 || wait) takeCredit(this.credits);
    else if (!tryTakeCredit(this.credits)) return;
    post({ type: 'notes', notes: this.notes, through: this.through });
    this.notes = [];
    this.posted = this.through;
    this.records = 0;
  }
}

/** Channel ids are one byte: a channel judged on its own is not told how many there are. */
const ANY_CHANNEL_COUNT = 255;

/**
 * judgeLiveMultifd(): one multifd channel, checked as the loader checks a channel on its own
 * (MultiFDInit, each packet's header and fields, compressed payloads): SYNC and device-state
 * packets and the diagnostics are posted as they pass; what needs the main channel or the other
 * channels (UUID against the main channel, duplicate ids, packet numbers across channels) is not
 * judged here.
 */
function judgeMultifd(
  source: RingSource,
  multifd: { channel: number; everyPacket: boolean },
  pageSize: number | undefined,
  credits: Int32Array,
): void {
  const join = new MultifdJoin(undefined, ANY_CHANNEL_COUNT, pageSize);
  const batch = new NoteBatch(credits);
  let reported = 0;
  const said = () => {
    for (; reported < join.diagnostics.length; reported++) {
      const d = join.diagnostics[reported];
      if (d)
        batch.notes.push({ note: 'diagnostic', offset: d.offset, clean: batch.through, diagnostic: diagnosticJson(d) });
    }
  };
  source.onStarve = () => {
    said();
    batch.flush(true);
  };
  try {
    join.checkChannel({ name: source.name, source }, multifd.channel, (rec) => {
      said();
      const note = multifdNote(rec, multifd.everyPacket);
      if (note) batch.notes.push(note);
      batch.through = rec.offset + rec.length;
      batch.counted();
    });
  } finally {
    said();
    batch.flush(true);
  }
}

function multifdNote(rec: MultifdRecord, everyPacket: boolean): LiveNote | undefined {
  if (rec.kind === 'multifd_packet') {
    const sync = rec.header.flags & MultifdFlag.MULTIFD_FLAG_SYNC;
    if (!sync && !everyPacket) return undefined;
    return {
      note: sync ? 'multifd-sync' : 'multifd-packet',
      offset: rec.offset,
      packetNum: Number(rec.fields.packetNum),
    };
  }
  if (rec.kind === 'multifd_device_state')
    return {
      note: 'multifd-device-state',
      offset: rec.offset,
      idstr: cString(rec.fields.idstr),
      instanceId: rec.fields.instanceId,
    };
  return undefined;
}

function runJob(data: DecodeWorkerData): void {
  try {
    run(data);
  } catch (e) {
    if (e instanceof StreamError) post({ type: 'error', stream: e.toJSON() });
    else if (e instanceof UsageError) post({ type: 'error', usage: e.message });
    else post({ type: 'error', internal: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
}

/**
 * How much of a RAM stream a waiting worker judges before it says it is ready: the decoder's
 * code is cold at first, and a live input's first megabytes arrive faster than cold code
 * decodes them (measured through the tap on this 2-core machine: the decoder fell 50 MB behind
 * a loopback relay in its first 100 ms cold, 17-38 MB warmed).
 */
const WARM_UP_BYTES = 4 << 20;

/** Run the main channel's judge over a RAM stream made here, so that its code is compiled and optimized. */
function warmUp(): void {
  const stream = openMainStream(new BufferSource(ramStreamBytes(WARM_UP_BYTES), 'warm-up'), {
    capabilities: [],
    copyData: false,
  });
  const loader = new ReferenceLoader({ capabilities: [] });
  const watch = new MainChannelWatch();
  for (const rec of stream.records()) {
    loader.add(rec);
    watch.notes(rec);
  }
  loader.finish();
}

// a worker started ahead of its input (SpareWorker) warms up, says it is ready, and gets its job as its first message
if (workerData === undefined || workerData === null) {
  warmUp();
  parentPort?.once('message', (data: DecodeWorkerData) => runJob(data));
  post({ type: 'ready' });
} else runJob(workerData as DecodeWorkerData);
