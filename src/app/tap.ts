/**
 * `migstream tap`: a relay between a source QEMU and its destination that decodes the
 * migration while it runs. Each connection to the listening address is forwarded to the
 * destination byte for byte in both directions (Node's pipe passes a slow destination's
 * back-pressure on to the source); its first bytes say which channel it is, as QEMU's
 * destination tells them apart (QEMU_VM_FILE_MAGIC: the main channel, MULTIFD_MAGIC: a
 * multifd channel), and the main channel's reverse direction is the return path.
 *
 * The main channel is decoded and judged by the reference loader in a worker thread
 * (`judgeLive`) as the bytes pass, each multifd channel in one of its own; this thread only
 * moves bytes and reports. A connection is read straight into a ring that the destination
 * and the decoder both take the bytes from (tap-forward.ts): the decoder never pushes back on
 * the relay; if it falls behind by the whole ring (FORWARD_RING_BYTES), decoding stops and that
 * is reported; the migration is never slowed by it.
 *
 * With `stopOnError` the main channel is held instead: its bytes reach the destination only
 * once the loader has judged the record they belong to, and the first error closes both sides
 * before that record is forwarded, so the destination never loads it. `mutate` holds it the
 * same way, to break chosen record headers before they are forwarded. Both run at the
 * decoder's pace by design.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { QEMU_VM_FILE_MAGIC } from '../../grammar/savevm.js';
import { MULTIFD_MAGIC, MultifdInit } from '../../grammar/multifd.js';
import { fixedSize } from '../../grammar/layout.js';
import { be32At } from '../io/bytes.js';
import type { DestinationProfile } from '../loader/profile.js';
import type { DiagnosticJson } from '../model/diagnostic.js';
import { judgeLive, judgeLiveMultifd, SpareWorker, type RingInput } from './decode.js';
import { ForwardRing } from './tap-forward.js';
import { InFlightMutator, mutatorSeed } from './tap-mutate.js';
import { messageFields, ReturnPathWatcher } from './tap-return-path.js';
import type { LiveNote } from './decode-protocol.js';

export interface TapEndpoint {
  host: string;
  port: number;
}

export interface TapRequest {
  listen: TapEndpoint;
  to: TapEndpoint;
  /** write each channel's bytes here: main.mig, main.multifdN.bin, main-return-path.bin */
  save?: string;
  /** destination capabilities the stream does not carry (QEMU names) */
  capability?: string[];
  /** the destination, as `validate --profile` takes it: the loader judges the stream for it */
  profile?: DestinationProfile;
  /** hold the main channel until each record is judged; on the first error close both sides before forwarding it */
  stopOnError?: boolean;
  /** stop after the first migration ends */
  once?: boolean;
  /** emit a `progress` event this often (ms) while a migration runs (a live status line) */
  progressMs?: number;
  /** break `count` record headers of each channel on their way (tap-mutate.ts); the channels are then held */
  mutate?: { seed: number; count: number };
}

/** A note of the main channel's judge (decode-protocol.ts) as an event: its fields, named by `event`. */
type MainChannelEvent<N extends LiveNote['note']> = Omit<Extract<LiveNote, { note: N }>, 'note'> & {
  event: N;
  channel: 'main';
};

/** What the tap reports as the migration goes (one JSON line each with --format json). */
export type TapEvent =
  | { event: 'listening'; host: string; port: number }
  | { event: 'connection'; channel: string }
  | {
      event: 'section';
      channel: 'main';
      offset: number;
      section: string;
      sectionId: number;
      idstr: string;
      /** inside MIG_CMD_PACKAGED (postcopy's device state) */
      packaged?: true;
    }
  /** a section's end: `offset` is its header's, `bytes` all it took (header to footer) */
  | MainChannelEvent<'section-end'>
  /** a round of RAM's dirty-page walk ended (live-watch.ts): the pages it sent, zero pages too */
  | MainChannelEvent<'ram-round'>
  /** a VFIO_MIG_FLAG_* tag of the VFIO device `idstr` */
  | MainChannelEvent<'vfio-tag'>
  /** the migration entered a phase (at the main channel's `offset`, `elapsedMs` after its first connection) */
  | { event: 'phase'; channel: 'main'; offset: number; phase: TapPhase; elapsedMs: number }
  | { event: 'command'; channel: 'main'; offset: number; command: string; packaged?: true }
  | { event: 'eof'; channel: 'main'; offset: number; packaged?: true }
  /** a SYNC packet on a multifd channel: the channel's end of a round of pages */
  | { event: 'multifd-sync'; channel: string; offset: number; packetNum: number }
  /** a device-state packet on a multifd channel (VFIO state over multifd) */
  | { event: 'multifd-device-state'; channel: string; offset: number; idstr: string; instanceId: number }
  | { event: 'diagnostic'; diagnostic: DiagnosticJson }
  | { event: 'decoder-lagged'; channel: string; bytes: number }
  | { event: 'decoder-failed'; channel: string; message: string }
  | { event: 'stopped'; channel: 'main'; offset: number; rule: string; forwarded: number }
  | { event: 'mutation'; channel: string; offset: number; what: string }
  | { event: 'return-path'; offset: number; message: string; fields: Record<string, number | string> }
  | { event: 'return-path-undecoded'; offset: number; reason: string }
  | { event: 'closed'; channel: string; bytes: number }
  | TapProgress
  | TapSummary;

/**
 * Where a migration is, as its main channel shows it: `setup` (the iterative devices' START
 * sections), `iterating` (their PART sections, the source running), `stop-and-copy` (the
 * source stopped: the downtime part, from the first END section, MIG_CMD_SWITCHOVER_START or
 * MIG_CMD_PACKAGED on), `postcopy` (after MIG_CMD_POSTCOPY_RUN: the destination runs), and
 * `completed` (QEMU_VM_EOF).
 */
export type TapPhase = 'setup' | 'iterating' | 'stop-and-copy' | 'postcopy' | 'completed';
const PHASES: readonly TapPhase[] = ['setup', 'iterating', 'stop-and-copy', 'postcopy', 'completed'];

/** How far a running migration has come: bytes relayed so far per channel, sections seen on the main channel. */
export interface TapProgress {
  event: 'progress';
  channels: Record<string, number>;
  sections: number;
  /** milliseconds since the migration's first connection */
  elapsedMs: number;
  phase: TapPhase;
  /** RAM's PART sections so far: the iterations of the source's migration loop */
  iterations: number;
  /** rounds of RAM's dirty-page walk ended so far, and the pages the last one sent */
  rounds: number;
  lastRoundPages: number;
  /** since the source stopped (stop-and-copy and on): main-channel bytes and milliseconds */
  sinceStop?: { bytes: number; ms: number };
  /** the bytes of the main channel's sections that ended so far, by idstr */
  sectionBytes: Record<string, number>;
}

/** The last event of a migration: how it ended, the bytes relayed per channel, every diagnostic. */
export interface TapSummary {
  event: 'migration';
  status: 'completed' | 'failed';
  channels: Record<string, number>;
  diagnostics: DiagnosticJson[];
}

/** MultiFDInit_t: be32 magic, be32 version, 16-byte UUID, then the u8 channel id */
const MULTIFD_INIT_ID_OFFSET =
  fixedSize(
    MultifdInit.slice(
      0,
      MultifdInit.findIndex((f) => f.name === 'id'),
    ),
  ) ?? 24;

/**
 * The ring each connection is read into (tap-forward.ts): how far the decoder may fall behind
 * the relay before it is dropped (the relay never waits for it). A migration's first connection
 * is its main channel (QEMU connects it first); the later ones, multifd channels, each carry a
 * share of the bandwidth and get a quarter of that, so that eight of them hold 128 MiB at most.
 */
const FORWARD_RING_BYTES = 64 << 20;
const LATER_RING_BYTES = 16 << 20;

/** How far the decoder of a held channel (fed copies) may fall behind before it gives up. */
const DECODER_LAG_BYTES = 256 << 20;

/** How much of the main channel --stop-on-error holds before it stops reading the source until the decoder catches up. */
const HOLD_BYTES = 64 << 20;

/**
 * The main channel's bytes held back from the destination until the loader has judged the
 * records they belong to (--stop-on-error). The source is read only while little is held and
 * the destination keeps up, so a slow decoder or destination slows the source.
 */
class HeldBytes {
  private chunks: Buffer[] = [];
  private held = 0;
  /** bytes written to the destination: the channel offset of the first held byte */
  forwarded = 0;
  private sourceEnded = false;
  private allJudged = false;
  /** the destination is connected (or connecting): until then what is judged is only noted */
  private open = false;
  private releaseTo = 0;
  private endWhenOpen = false;

  constructor(
    private readonly source: Socket,
    private readonly destination: Socket,
    /** each piece as it is forwarded (--save keeps what the destination got) */
    private readonly forwardedPiece?: (piece: Buffer) => void,
  ) {
    destination.on('drain', () => this.flow());
  }

  /** Change one held byte (chunks pushed here are the holder's own copies). False when it was forwarded already. */
  patch(offset: number, value: number): boolean {
    let at = this.forwarded;
    for (const chunk of this.chunks) {
      if (offset < at + chunk.length) {
        if (offset < at) return false;
        chunk[offset - at] = value;
        return true;
      }
      at += chunk.length;
    }
    return false;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.held += chunk.length;
    this.flow();
  }

  /** The connection's turn came: the destination is being connected, what was judged goes on to it. */
  opened(): void {
    this.open = true;
    this.release(this.releaseTo);
    if (this.endWhenOpen) this.destination.end();
  }

  /** Everything before `offset` was judged: forward it (once the destination is connected). */
  release(offset: number): void {
    this.releaseTo = Math.max(this.releaseTo, offset);
    if (!this.open) return;
    while (this.chunks.length && this.forwarded < this.releaseTo) {
      const chunk = this.chunks[0] as Buffer;
      const n = Math.min(chunk.length, this.releaseTo - this.forwarded);
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
      this.held -= n;
      this.forwarded += n;
      const piece = n === chunk.length ? chunk : chunk.subarray(0, n);
      this.forwardedPiece?.(piece);
      this.destination.write(piece);
    }
    this.flow();
  }

  /** The record at `offset` broke a rule: forward what came before it, then end the destination's side. */
  cut(offset: number): void {
    this.allJudged = false;
    this.release(offset);
    this.endDestination();
  }

  get destinationSocket(): Socket {
    return this.destination;
  }

  /** the source closed its side: the destination's side closes once the rest is judged */
  sourceEnd(): void {
    this.sourceEnded = true;
    if (this.allJudged) this.endDestination();
  }

  /** The loader is done and found no error: forward the rest. */
  judged(): void {
    this.allJudged = true;
    this.release(Infinity);
    if (this.sourceEnded) this.endDestination();
  }

  private endDestination(): void {
    if (this.open) this.destination.end();
    else this.endWhenOpen = true;
  }

  private flow(): void {
    if (this.source.destroyed) return;
    if (this.held > HOLD_BYTES || this.destination.writableNeedDrain) this.source.pause();
    else this.source.resume();
  }
}

/** What a channel's decoder reads, and whether it fell behind (what it says after that is about the gap, not the stream). */
interface ChannelFeed {
  readonly input: AsyncIterable<Uint8Array> | RingInput;
  readonly lagged: boolean;
  /** how far behind the decoder was when it was dropped */
  readonly lagBytes: number;
}

/** Chunks handed to the decoder without back-pressure, up to a bound (held channels: their bytes are copies). */
class DecoderFeed implements AsyncIterable<Uint8Array>, ChannelFeed {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  lagged = false;
  readonly lagBytes = DECODER_LAG_BYTES;
  private wake: (() => void) | undefined;

  get input(): AsyncIterable<Uint8Array> {
    return this;
  }

  push(chunk: Uint8Array): boolean {
    if (this.lagged || this.ended) return false;
    if (this.queued + chunk.length > DECODER_LAG_BYTES) {
      this.lagged = true;
      this.queue = [];
      this.end();
      return false;
    }
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.wake?.();
    return true;
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        this.queued -= chunk.length;
        yield chunk;
      } else if (this.ended) return;
      else {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    }
  }
}

/** One migration: its main channel, the multifd channels that join it, and what was decoded. */
class Migration {
  readonly bytes: Record<string, number> = {};
  readonly diagnostics: DiagnosticJson[] = [];
  private open = 0;
  private others = 0;
  sawEof = false;
  failed = false;
  /** the decoder fell behind or failed: the stream's end was not seen, which says nothing about the migration */
  decoderStopped = false;
  /** each channel's decoding (the main channel's, and one per multifd channel) */
  readonly decodings: Promise<void>[] = [];
  /** each held channel's bytes: main's with --stop-on-error or --mutate, multifd channels' with --mutate */
  readonly holds = new Map<string, HeldBytes>();
  /** every socket of the migration (closed together) */
  readonly sockets: Socket[] = [];
  stopped = false;
  /** --mutate: each channel's own draw */
  private readonly mutators = new Map<string, InFlightMutator>();
  /** bytes relayed so far per channel (the return path included), for progress */
  readonly live: Record<string, number> = {};
  sections = 0;
  readonly started = Date.now();
  private phase: TapPhase = 'setup';
  private iterations = 0;
  private rounds = 0;
  private lastRoundPages = 0;
  private readonly sectionBytes: Record<string, number> = {};
  /** where and when the source stopped (the main channel's offset) */
  private stoppedAt: { offset: number; ms: number } | undefined;

  constructor(
    private readonly req: TapRequest,
    private readonly emit: (e: TapEvent) => void,
    private readonly done: (m: Migration) => void,
    /** decoder workers started before the channels arrive */
    private readonly workers: SpareWorker,
  ) {}

  /** the main channel's held bytes */
  get held(): HeldBytes | undefined {
    return this.holds.get('main');
  }

  /** --mutate: the channel's mutator (multifd channels by their id) */
  private mutatorFor(channel: string, multifdId?: number): InFlightMutator | undefined {
    const mutate = this.req.mutate;
    if (!mutate) return undefined;
    let m = this.mutators.get(channel);
    if (!m) this.mutators.set(channel, (m = new InFlightMutator(mutatorSeed(mutate.seed, multifdId), mutate.count)));
    return m;
  }

  /** Apply the channel's mutation for note `n`, if it draws one, to its held bytes; reported. */
  private mutate(channel: string, n: LiveNote, multifdId?: number): void {
    const mutation = this.mutatorFor(channel, multifdId)?.consider(n);
    if (mutation && this.holds.get(channel)?.patch(mutation.offset, mutation.value))
      this.emit({ event: 'mutation', channel, offset: mutation.offset, what: mutation.what });
  }

  /** main, multifdN (N: the channel id of its MultiFDInit packet), or otherN */
  channelName(head: Uint8Array): string {
    const magic = be32At(head, 0);
    if (magic === QEMU_VM_FILE_MAGIC) return 'main';
    if (magic === MULTIFD_MAGIC) return `multifd${head[MULTIFD_INIT_ID_OFFSET] ?? '?'}`;
    return `other${this.others++}`;
  }

  saveFile(channel: string): WriteStream | undefined {
    if (!this.req.save) return undefined;
    mkdirSync(this.req.save, { recursive: true });
    const name =
      channel === 'main' ? 'main.mig' : channel === 'return-path' ? 'main-return-path.bin' : `main.${channel}.bin`;
    return createWriteStream(join(this.req.save, name));
  }

  opened(): void {
    this.open++;
  }

  closed(channel: string, bytes: number, failed: boolean): void {
    this.bytes[channel] = bytes;
    if (failed) this.failed = true;
    this.emit({ event: 'closed', channel, bytes });
    if (--this.open === 0) void this.finish();
  }

  private async finish(): Promise<void> {
    await Promise.all(this.decodings);
    this.done(this);
  }

  /**
   * --stop-on-error: the record at `offset` broke `rule`. The bytes before `clean` were judged
   * without error and are forwarded, the destination's input then ends, and every other
   * channel of the migration is closed.
   */
  private stop(offset: number, rule: string, clean = this.held?.forwarded ?? 0): void {
    if (this.stopped) return;
    this.stopped = true;
    this.failed = true;
    this.held?.cut(clean);
    this.emit({ event: 'stopped', channel: 'main', offset, rule, forwarded: this.held?.forwarded ?? 0 });
    for (const s of this.sockets) if (s !== this.held?.destinationSocket) s.destroy();
  }

  /** Decode and judge the main channel as it passes (and with --stop-on-error, forward what was judged). */
  watch(feed: ChannelFeed): void {
    this.decodings.push(this.judgeMain(feed));
  }

  private async judgeMain(feed: ChannelFeed): Promise<void> {
    const judge = { capabilities: this.req.capability ?? [], profile: this.req.profile };
    try {
      for await (const batch of judgeLive(feed.input, 'main channel', judge, this.workers.take())) {
        // what the decoder says after the bytes it lost is about the gap, not the stream
        if (this.stopped || feed.lagged) break;
        let error: { offset: number; clean: number; rule: string } | undefined;
        for (const n of batch.notes) {
          this.note(n);
          this.mutate('main', n);
          if (n.note === 'diagnostic' && n.diagnostic.severity === 'error')
            error ??= { offset: n.offset, clean: n.clean, rule: n.diagnostic.rule };
        }
        if (error && this.req.stopOnError) {
          this.stop(error.offset, error.rule, error.clean);
          return;
        }
        this.held?.release(batch.through);
      }
    } catch (e) {
      // a decoder dropped for lagging fails on the bytes it lost: that is the lag, below
      if (!feed.lagged) {
        // the worker judges the stream's own errors: this is the decoder failing, not the stream;
        // the relay went on, and the status is left to it
        this.decoderStopped = true;
        this.emit({ event: 'decoder-failed', channel: 'main', message: e instanceof Error ? e.message : String(e) });
        // held bytes that cannot be judged are not forwarded; held only for --mutate, they go on unmutated
        if (this.req.stopOnError) this.stop(this.held?.forwarded ?? 0, 'tap/decoder-failed');
        else this.held?.judged();
        return;
      }
    }
    if (this.stopped) return;
    if (feed.lagged) {
      this.decoderStopped = true;
      this.emit({ event: 'decoder-lagged', channel: 'main', bytes: feed.lagBytes });
      if (this.req.stopOnError) this.stop(this.held?.forwarded ?? 0, 'tap/decoder-lagged');
      else this.held?.judged();
      return;
    }
    this.held?.judged();
  }

  /**
   * A multifd channel judged on its own as it passes (its packets, SYNCs, device state). Held
   * only with --mutate, to break packet headers on their way; --stop-on-error acts on the main
   * channel (a multifd channel's packets are judged without the main channel's context).
   */
  watchMultifd(feed: ChannelFeed, channel: string, id: number): void {
    const held = this.holds.get(channel);
    this.decodings.push(
      (async () => {
        try {
          // every packet a candidate for --mutate; without it only what is shown comes back
          for await (const batch of judgeLiveMultifd(
            feed.input,
            channel,
            id,
            this.req.mutate !== undefined,
            this.workers.take(),
          )) {
            if (feed.lagged) break;
            for (const n of batch.notes) {
              this.note(n, channel);
              this.mutate(channel, n, id);
            }
            held?.release(batch.through);
          }
        } catch (e) {
          if (!feed.lagged) {
            this.decoderStopped = true;
            this.emit({ event: 'decoder-failed', channel, message: e instanceof Error ? e.message : String(e) });
            held?.judged();
            return;
          }
        }
        if (feed.lagged) {
          this.decoderStopped = true;
          this.emit({ event: 'decoder-lagged', channel, bytes: feed.lagBytes });
        }
        held?.judged();
      })(),
    );
  }

  private note(n: LiveNote, channel = 'main'): void {
    if (n.note === 'diagnostic') {
      this.diagnostics.push(n.diagnostic);
      this.emit({ event: 'diagnostic', diagnostic: n.diagnostic });
    } else if (n.note === 'eof') {
      if (!n.packaged) this.sawEof = true;
      this.emit({ event: 'eof', channel: 'main', offset: n.offset, ...(n.packaged ? { packaged: true } : {}) });
      if (!n.packaged) this.enter('completed', n.offset);
    } else if (n.note === 'section') {
      this.sections++;
      const { note: _, ...section } = n;
      this.emit({ event: 'section', channel: 'main', ...section });
      if (!n.packaged) {
        if (n.section === 'PART') {
          if (n.idstr === 'ram') this.iterations++;
          this.enter('iterating', n.offset);
        } else if (n.section === 'END' || (n.section === 'FULL' && this.phase === 'iterating'))
          this.enter('stop-and-copy', n.offset);
      }
    } else if (n.note === 'section-end') {
      this.sectionBytes[n.idstr] = (this.sectionBytes[n.idstr] ?? 0) + n.bytes;
      const { note: _, ...section } = n;
      this.emit({ event: 'section-end', channel: 'main', ...section });
    } else if (n.note === 'ram-round') {
      this.rounds = n.round;
      this.lastRoundPages = n.pages;
      this.emit({ event: 'ram-round', channel: 'main', offset: n.offset, round: n.round, pages: n.pages });
    } else if (n.note === 'vfio-tag') {
      const { note: _, ...tag } = n;
      this.emit({ event: 'vfio-tag', channel: 'main', ...tag });
    } else if (n.note === 'multifd-sync') {
      this.emit({ event: 'multifd-sync', channel, offset: n.offset, packetNum: n.packetNum });
    } else if (n.note === 'multifd-device-state') {
      const { note: _, ...packet } = n;
      this.emit({ event: 'multifd-device-state', channel, ...packet });
    } else if (n.note === 'multifd-packet') {
      // every packet: a candidate for --mutate, too many to show
    } else {
      const { note: _, ...command } = n;
      this.emit({ event: 'command', channel: 'main', ...command });
      if (n.command === 'MIG_CMD_SWITCHOVER_START' || n.command === 'MIG_CMD_PACKAGED')
        this.enter('stop-and-copy', n.offset);
      else if (n.command === 'MIG_CMD_POSTCOPY_RUN') this.enter('postcopy', n.offset);
    }
  }

  /** Move on to `phase` (never back), reported. */
  private enter(phase: TapPhase, offset: number): void {
    if (PHASES.indexOf(phase) <= PHASES.indexOf(this.phase)) return;
    // a stream that skips a phase still stopped the source where it leaves iterating
    if (!this.stoppedAt && PHASES.indexOf(phase) >= PHASES.indexOf('stop-and-copy'))
      this.stoppedAt = { offset, ms: Date.now() };
    this.phase = phase;
    this.emit({ event: 'phase', channel: 'main', offset, phase, elapsedMs: Date.now() - this.started });
  }

  progress(): TapProgress {
    const stop = this.stoppedAt;
    return {
      event: 'progress',
      channels: { ...this.live },
      sections: this.sections,
      elapsedMs: Date.now() - this.started,
      phase: this.phase,
      iterations: this.iterations,
      rounds: this.rounds,
      lastRoundPages: this.lastRoundPages,
      sectionBytes: { ...this.sectionBytes },
      ...(stop ? { sinceStop: { bytes: (this.live['main'] ?? 0) - stop.offset, ms: Date.now() - stop.ms } } : {}),
    };
  }

  summary(): TapSummary {
    const errors = this.diagnostics.some((d) => d.severity === 'error');
    return {
      event: 'migration',
      status: (this.sawEof || this.decoderStopped) && !this.failed && !errors ? 'completed' : 'failed',
      channels: this.bytes,
      diagnostics: this.diagnostics,
    };
  }
}

/**
 * Relay and decode until the first migration ends (`once`) or for ever. Resolves with the
 * summaries of the migrations seen, once the tap has stopped.
 */
export function tap(req: TapRequest, emit: (e: TapEvent) => void): Promise<TapSummary[]> {
  const summaries: TapSummary[] = [];
  return new Promise((resolve, reject) => {
    let current: Migration | undefined;
    const workers = new SpareWorker();
    // connections go on to the destination in the order the source made them (a QEMU 7.2
    // destination takes the first for the main channel), each once it has sent a byte
    let turn = Promise.resolve();
    const server = createServer({ pauseOnConnect: true }, (source) => {
      current ??= new Migration(req, emit, ended, workers);
      const after = turn;
      let done = () => {};
      turn = new Promise<void>((resolve) => (done = resolve));
      relay(source, current, req, emit, { after, done });
    });
    const timer = req.progressMs
      ? setInterval(() => {
          if (current) emit(current.progress());
        }, req.progressMs)
      : undefined;
    timer?.unref();
    const ended = (m: Migration) => {
      const s = m.summary();
      summaries.push(s);
      emit(s);
      if (current === m) current = undefined;
      if (req.once) {
        clearInterval(timer);
        workers.close();
        server.close(() => resolve(summaries));
      }
    };
    server.on('error', reject);
    // listening is said once the first decoder is ready: a source that connects then is decoded from its first byte
    const ready = workers.prepare();
    server.listen(req.listen.port, req.listen.host, () => {
      void ready.then(() => {
        const a = server.address();
        emit({
          event: 'listening',
          host: req.listen.host,
          port: typeof a === 'object' && a ? a.port : req.listen.port,
        });
      });
    });
  });
}

/**
 * One connection: read at once, connected onwards once it has sent a byte and the connections
 * the source made before it have been (a QEMU 7.2 destination takes the first connection for
 * the main channel, so the order in which the source connected is kept), forwarded both ways,
 * and named by its first bytes. A connection that closes without sending a byte is not
 * relayed; one closed before it sent four bytes is relayed and reported as no channel.
 *
 * By default the source is read straight into a ring that the destination, the save file and
 * the decoder all take the bytes from (tap-forward.ts). With --stop-on-error or --mutate the
 * bytes wait until the channel is named; the main channel's then wait for the loader
 * (HeldBytes), and the decoder gets copies.
 */
function relay(
  accepted: Socket,
  m: Migration,
  req: TapRequest,
  emit: (e: TapEvent) => void,
  /** `after`: the connections made before this one have gone on (or were empty); `done`: so has this one */
  turn: { after: Promise<void>; done: () => void },
): void {
  // the main channel waits for the loader's verdict (--stop-on-error) or for its mutations (--mutate),
  // a multifd channel for its mutations (--mutate); other channels wait only to be named
  const held = req.stopOnError === true || req.mutate !== undefined;
  let channel: string | undefined;
  let save: WriteStream | undefined;
  let backSave: WriteStream | undefined;
  let copies: DecoderFeed | undefined;
  let head: Buffer[] = [];
  let sent = 0;
  let back = 0;
  let failed = false;
  // connected when the connection's turn comes; until then what goes to it waits
  const destination = new Socket();
  let forwarding = false;
  const onForward: (() => void)[] = [];
  const whenForwarding = (f: () => void): void => {
    if (forwarding) f();
    else onForward.push(f);
  };
  let sawByte: (any: boolean) => void = () => {};
  const anyByte = new Promise<boolean>((resolve) => (sawByte = resolve));
  void turn.after
    .then(() => anyByte)
    .then((any) => {
      // a connection that failed while it waited is not connected either
      if (any && !failed) {
        destination.connect(req.to.port, req.to.host);
        forwarding = true;
        ring?.forward();
        for (const f of onForward.splice(0)) f();
      } else {
        source.destroy();
        destination.destroy();
      }
      turn.done();
    });
  const inRing = (view: Uint8Array, offset: number) => {
    sent = offset + view.length;
    sawByte(true);
    if (channel !== undefined) {
      m.live[channel] = sent;
      return;
    }
    if (sent < 4 || !ring) return;
    // the ring holds the connection's first bytes from its start
    const first = new Uint8Array(ring.ring.data, 0, sent);
    if (be32At(first, 0) === MULTIFD_MAGIC && sent <= MULTIFD_INIT_ID_OFFSET) return;
    m.live[name(first)] = sent;
  };
  const capacity = m.sockets.length === 0 ? FORWARD_RING_BYTES : LATER_RING_BYTES;
  const forwardRing = held
    ? undefined
    : new ForwardRing(capacity, destination, { bytes: inRing, lagged: () => undefined });
  const adopted = forwardRing?.adopt(accepted);
  // Node's sockets could not be read into the ring: the bytes are copied to the decoder
  const ring = adopted ? forwardRing : undefined;
  const source = adopted ?? accepted;
  m.sockets.push(source, destination);
  const name = (first: Uint8Array): string => {
    const named = m.channelName(first);
    channel = named;
    m.opened();
    emit({ event: 'connection', channel });
    save = m.saveFile(channel);
    if (save) ring?.saveTo(save);
    // the save file of a held channel keeps what was forwarded: what the destination got
    // (a forwarded piece is never patched again: it is written as it is)
    const hold = () => {
      const h = new HeldBytes(source, destination, (piece) => save?.write(piece));
      m.holds.set(channel ?? '', h);
      whenForwarding(() => h.opened());
    };
    const decoderFeed = (): ChannelFeed => {
      if (ring) return ring.decode();
      copies = new DecoderFeed();
      return copies;
    };
    if (channel.startsWith('multifd')) {
      const feed = decoderFeed();
      if (req.mutate) hold();
      m.watchMultifd(feed, channel, first[MULTIFD_INIT_ID_OFFSET] ?? 0);
    }
    if (channel === 'main') {
      const feed = decoderFeed();
      if (held) hold();
      m.watch(feed);
      backSave = m.saveFile('return-path');
    }
    return named;
  };
  /** The copying path, bytes not held: passed on as read, the source paused while the destination is full (or not yet connected). */
  let waitingForTurn = false;
  const pass = (chunk: Buffer) => {
    if (!forwarding) {
      onForward.push(() => pass(chunk));
      // it has sent a byte: nothing more is read until its turn
      if (!waitingForTurn) {
        waitingForTurn = true;
        source.pause();
        onForward.push(() => source.resume());
      }
      return;
    }
    if (!destination.write(chunk)) {
      source.pause();
      destination.once('drain', () => source.resume());
    }
  };
  /** the copying path: each chunk as Node read it */
  const take = (chunk: Buffer) => {
    sent += chunk.length;
    sawByte(true);
    if (channel === undefined) {
      head.push(chunk);
      if (sent < 4) return;
      chunk = Buffer.concat(head);
      // a multifd channel is named by its id, after the magic, version and UUID of MultiFDInit
      if (be32At(chunk, 0) === MULTIFD_MAGIC && sent <= MULTIFD_INIT_ID_OFFSET) {
        head = [chunk];
        return;
      }
      head = [];
      name(chunk);
    }
    if (channel !== undefined) m.live[channel] = (m.live[channel] ?? 0) + chunk.length;
    copies?.push(chunk);
    const h = channel === undefined ? undefined : m.holds.get(channel);
    if (h) {
      // --mutate patches held bytes: those get a copy of their own, so that no other holder of the chunk sees a change
      h.push(req.mutate ? Buffer.from(chunk) : chunk);
      return;
    }
    save?.write(chunk);
    pass(chunk);
  };
  // the main connection's reverse direction is the return path: decoded as it passes
  let returnPath: ReturnPathWatcher | undefined;
  destination.on('data', (chunk: Buffer) => {
    if (channel === 'main') {
      returnPath ??= new ReturnPathWatcher();
      const wasDecoding = !returnPath.failed;
      for (const rec of returnPath.push(chunk))
        emit({ event: 'return-path', offset: rec.offset, message: rec.name, fields: messageFields(rec) });
      if (wasDecoding && returnPath.failed)
        emit({ event: 'return-path-undecoded', offset: back, reason: returnPath.failed });
    }
    back += chunk.length;
    if (channel === 'main') m.live['return-path'] = back;
    backSave?.write(chunk);
  });
  let closedSides = 0;
  const close = () => {
    if (++closedSides < 2 || channel === undefined) return;
    if (ring) ring.end();
    else copies?.end();
    save?.end();
    backSave?.end();
    if (channel === 'main' && back > 0) m.bytes['return-path'] = back;
    m.closed(channel, sent, failed);
  };
  const fail = () => {
    failed = true;
    source.destroy();
    destination.destroy();
  };
  source.on('error', fail);
  destination.on('error', fail);
  source.on('close', close);
  destination.on('close', close);
  // a connection that ends without a byte is not relayed
  source.on('end', () => sawByte(sent > 0));
  source.on('close', () => sawByte(sent > 0));
  if (ring) {
    source.on('end', () => {
      ring.end();
      whenForwarding(() => destination.end());
    });
  } else {
    source.on('data', take);
    // the decoder sees the end of the stream when the source ends it, not when both sides have
    // closed: with --stop-on-error the destination's side waits for the decoder's verdict
    source.on('end', () => copies?.end());
    source.on('end', () =>
      whenForwarding(() => {
        const h = channel === undefined ? undefined : m.holds.get(channel);
        if (h) {
          h.sourceEnd();
          return;
        }
        for (const c of head) destination.write(c); // fewer bytes than name a channel
        destination.end();
      }),
    );
  }
  destination.pipe(source);
  source.resume();
}
