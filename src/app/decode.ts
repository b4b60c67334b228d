/**
 * `decode()`: a main-channel stream as an async iterator of records, from a file path, bytes
 * in memory, or anything that yields bytes asynchronously (a socket, a child's stdout, a
 * Node or web stream). The last kind is decoded in a worker thread as the bytes arrive, so
 * the caller's event loop keeps running; memory stays bounded by a ring of RING_BYTES and
 * BATCHES_IN_FLIGHT batches of records, and a consumer that stops pulling stops the input.
 */
import { Worker } from 'node:worker_threads';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { workerExecArgv } from '../loader/worker-options.js';
import { BufferSource } from '../io/source.js';
import { createSharedRing, RingWriter, type SharedRing } from '../io/shared-ring.js';
import { StreamError, UsageError } from '../model/errors.js';
import type { DecodeWarning, MainRecord } from '../model/records.js';
import { openStreamFile, readVmsdFile, type StreamRequest } from './open.js';
import type { DecodeWorkerData, DecodeWorkerMessage, JudgeRequest, LiveNotes } from './decode-protocol.js';

/** A path, the bytes themselves, or bytes as they arrive. */
export type StreamInput = string | Uint8Array | AsyncIterable<Uint8Array>;

export interface DecodeRequest extends StreamRequest {
  /** each decoder warning as it is found (an unreadable vmdescription, a payload kept raw, ...) */
  onWarning?: (warning: DecodeWarning) => void;
  /** what errors call an asynchronous input; a path names itself */
  name?: string;
}

const RING_BYTES = 8 << 20;
const BATCHES_IN_FLIGHT = 4;
/** a synchronous input lets the event loop run every this many records */
const YIELD_EVERY = 256;

/**
 * The records of a main-channel stream, in stream order. Each record owns its bytes (it may
 * be kept). Throws StreamError where the stream is invalid, UsageError when the input cannot
 * be read. Leaving the loop early closes the file or stops reading the input.
 *
 * A stream read as it arrives has its vmdescription only at its end: give `vmsd` to have
 * device sections decoded into fields; without it they are records of raw bytes.
 */
export async function* decode(input: StreamInput, request: DecodeRequest = {}): AsyncGenerator<MainRecord, void> {
  if (typeof input === 'string') {
    yield* fromSync(openStreamFile(input, request, { copyData: true }), request);
  } else if (input instanceof Uint8Array) {
    const stream = openMainStream(new BufferSource(input, request.name), {
      vmdesc: readVmsdFile(request.vmsd),
      pageSize: request.pageSize,
      capabilities: request.capability ?? [],
      copyData: true,
    });
    yield* fromSync(stream, request);
  } else {
    yield* fromAsync(input, request);
  }
}

async function* fromSync(stream: OpenedStream, request: DecodeRequest): AsyncGenerator<MainRecord, void> {
  let warned = 0;
  const deliverWarnings = () => {
    for (; warned < stream.warnings.length; warned++) {
      const w = stream.warnings[warned];
      if (w) request.onWarning?.(w);
    }
  };
  let n = 0;
  try {
    for (const rec of stream.records()) {
      deliverWarnings();
      yield rec;
      if (++n % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    deliverWarnings();
  } finally {
    stream.close();
  }
}

async function* fromAsync(input: AsyncIterable<Uint8Array>, request: DecodeRequest): AsyncGenerator<MainRecord, void> {
  const vmdesc = readVmsdFile(request.vmsd);
  const messages = workerMessages(input, request.name ?? '<stream>', {
    vmdescJson: vmdesc === undefined ? undefined : JSON.stringify(vmdesc),
    pageSize: request.pageSize,
    capabilities: request.capability ?? [],
  });
  for await (const m of messages) {
    if (m.type === 'records') yield* m.records;
    else if (m.type === 'warning') request.onWarning?.(m.warning);
  }
}

/** decode-worker.ts with its job, or (no job) waiting for it as its first message. */
function startWorker(workerData?: DecodeWorkerData): Worker {
  return new Worker(new URL('./decode-worker.js', import.meta.url), { workerData, execArgv: workerExecArgv() });
}

/**
 * A decoder worker started before its input arrives, so that a live input is decoded from its
 * first byte: a worker takes tens of milliseconds to start (50 ms on an idle 2-core machine),
 * in which a relay on loopback passes 50 MB. Each `take` hands the waiting worker over and
 * starts the next one. A waiting worker does not keep the process alive.
 */
export class SpareWorker {
  private waiting: Worker | undefined;
  private ready: Promise<void> = Promise.resolve();

  /** Start the next worker now, if none waits; resolves once it is ready for its job (or has failed). */
  prepare(): Promise<void> {
    if (this.waiting) return this.ready;
    const next = startWorker();
    next.unref();
    // one that failed while it waited is not handed over (its events would come before anyone listens)
    const gone = () => {
      if (this.waiting === next) this.waiting = undefined;
    };
    next.once('error', gone).once('exit', gone);
    this.waiting = next;
    this.ready = new Promise<void>((resolve) => {
      next.once('message', () => resolve());
      next.once('error', () => resolve()).once('exit', () => resolve());
    });
    return this.ready;
  }

  /** The waiting worker (or a new one), for a job to be posted to it; the next one starts. */
  take(): Worker {
    const worker = this.waiting ?? startWorker();
    this.waiting = undefined;
    void this.prepare();
    return worker;
  }

  close(): void {
    void this.waiting?.terminate();
    this.waiting = undefined;
  }
}

/** What the worker posts that is not the end or a failure. */
export type WorkerBatch = Extract<DecodeWorkerMessage, { type: 'records' | 'notes' | 'warning' }>;

/**
 * Bytes the caller puts into a shared ring itself (a socket read straight into it, see
 * RingWriter.space); the worker reads them there. The caller ends the ring when its input ends.
 */
export interface RingInput {
  ring: SharedRing;
}

/**
 * Run decode-worker.ts over an asynchronous input: the input is pumped into a shared ring the
 * worker reads (or the caller fills the ring itself), and what the worker posts is yielded
 * here. A batch's credit goes back to the worker when the consumer asks for the next one, so
 * at most BATCHES_IN_FLIGHT are ever waiting. `started`: a worker waiting for its job
 * (SpareWorker). Ends at the worker's end; throws what it failed with (StreamError, UsageError).
 */
export async function* workerMessages(
  input: AsyncIterable<Uint8Array> | RingInput,
  name: string,
  options: Omit<DecodeWorkerData, 'ring' | 'credits' | 'name'>,
  started?: Worker,
): AsyncGenerator<WorkerBatch, void> {
  const ring = 'ring' in input ? input.ring : createSharedRing(RING_BYTES);
  const credits = new Int32Array(new SharedArrayBuffer(4));
  credits[0] = BATCHES_IN_FLIGHT;
  const workerData: DecodeWorkerData = { ...options, ring, credits: credits.buffer, name };
  let worker: Worker;
  if (started) {
    worker = started;
    worker.ref();
    worker.postMessage(workerData);
  } else worker = startWorker(workerData);
  const inbox: DecodeWorkerMessage[] = [];
  let wake: (() => void) | undefined;
  // set by the worker's events, read by the loop below
  const events: { exited: boolean; failure?: Error } = { exited: false };
  worker.on('message', (m: DecodeWorkerMessage) => {
    inbox.push(m);
    wake?.();
  });
  worker.on('error', (e: Error) => {
    events.failure = e;
    wake?.();
  });
  worker.on('exit', () => {
    events.exited = true;
    wake?.();
  });

  const writer = new RingWriter(ring);
  // set by the pump and by the consumer's side, read by the other
  const shared: { stopped: boolean; inputFailure?: Error } = { stopped: false };
  const chunks = 'ring' in input ? undefined : input[Symbol.asyncIterator]();
  const pump = (async () => {
    if (!chunks) return;
    try {
      for (;;) {
        const next = await chunks.next();
        if (next.done || shared.stopped) break;
        await writer.write(next.value);
      }
      writer.end();
    } catch (e) {
      shared.inputFailure = e as Error;
      writer.abort();
    }
  })();

  try {
    for (;;) {
      const m = inbox.shift();
      if (m === undefined) {
        if (events.failure) throw new Error(`decoder worker failed: ${events.failure.message}`);
        if (events.exited) throw new Error('decoder worker exited before the end of the stream');
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      if (m.type === 'records' || m.type === 'notes') {
        yield m;
        Atomics.add(credits, 0, 1);
        Atomics.notify(credits, 0);
      } else if (m.type === 'warning') {
        yield m;
      } else if (m.type === 'end') {
        return;
      } else if (m.type === 'ready') {
        // a worker handed over before it was ready says so when it is: nothing to do
        continue;
      } else if (shared.inputFailure) {
        throw new UsageError(`cannot read ${name}: ${shared.inputFailure.message}`);
      } else if (m.stream) {
        const j = m.stream;
        throw new StreamError(j.code, j.offset, j.path, j.expected, j.found);
      } else if (m.usage !== undefined) {
        throw new UsageError(m.usage);
      } else {
        throw new Error(`decoder worker failed: ${m.internal ?? 'no reason given'}`);
      }
    }
  } finally {
    shared.stopped = true;
    writer.abort();
    await worker.terminate();
    // a consumer that left early: stop the input (a Node stream is destroyed), even one that sends nothing more
    await chunks?.return?.().catch(() => undefined);
    // the pump is not awaited: an input that never answers again must not hold the caller (it
    // writes nothing more into an aborted ring, and it catches its own failures)
    void pump;
  }
}

/**
 * A live main channel judged as it arrives: the reference loader runs in the worker beside
 * the decoder, and only notes come back (sections, commands, diagnostics, how far it has
 * judged), never the records, so the caller's thread is left to move bytes.
 */
export async function* judgeLive(
  input: AsyncIterable<Uint8Array> | RingInput,
  name: string,
  judge: JudgeRequest,
  started?: Worker,
): AsyncGenerator<LiveNotes, void> {
  for await (const m of workerMessages(input, name, { capabilities: judge.capabilities, judge }, started))
    if (m.type === 'notes') yield m;
}

/**
 * A live multifd channel (channel id `channel`) judged on its own as it arrives, in a worker of
 * its own: its SYNC and device-state packets and the diagnostics of its packets come back, and
 * with `everyPacket` a note for every other RAM packet too.
 */
export async function* judgeLiveMultifd(
  input: AsyncIterable<Uint8Array> | RingInput,
  name: string,
  channel: number,
  everyPacket = false,
  started?: Worker,
): AsyncGenerator<LiveNotes, void> {
  for await (const m of workerMessages(input, name, { capabilities: [], multifd: { channel, everyPacket } }, started))
    if (m.type === 'notes') yield m;
}
