/**
 * `migstream tap`: a relay between a source QEMU and its destination that decodes the
 * migration while it runs. Each connection to the listening address is forwarded to the
 * destination byte for byte in both directions (Node's pipe passes a slow destination's
 * back-pressure on to the source); its first bytes say which channel it is, as QEMU's
 * destination tells them apart (QEMU_VM_FILE_MAGIC: the main channel, MULTIFD_MAGIC: a
 * multifd channel), and the main channel's reverse direction is the return path.
 *
 * The main channel is decoded by `decode()` (a worker thread) and judged by the reference
 * loader as the bytes pass. The decoder is fed through a bounded queue that never pushes
 * back on the relay: if it falls behind by more than DECODER_LAG_BYTES, decoding stops and
 * that is reported; the migration is never slowed by it.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { QEMU_VM_FILE_MAGIC } from '../../grammar/savevm.js';
import { MULTIFD_MAGIC, MultifdInit } from '../../grammar/multifd.js';
import { fixedSize } from '../../grammar/layout.js';
import { be32At } from '../io/bytes.js';
import { ReferenceLoader } from '../loader/load.js';
import { diagnosticJson, type DiagnosticJson } from '../model/diagnostic.js';
import { StreamError } from '../model/errors.js';
import type { MainRecord } from '../model/records.js';
import { decode } from './decode.js';

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
  /** stop after the first migration ends */
  once?: boolean;
}

/** What the tap reports as the migration goes (one JSON line each with --format json). */
export type TapEvent =
  | { event: 'listening'; host: string; port: number }
  | { event: 'connection'; channel: string }
  | { event: 'section'; channel: 'main'; offset: number; section: string; sectionId: number; idstr: string }
  | { event: 'command'; channel: 'main'; offset: number; command: string }
  | { event: 'eof'; channel: 'main'; offset: number }
  | { event: 'diagnostic'; diagnostic: DiagnosticJson }
  | { event: 'decoder-lagged'; channel: 'main'; bytes: number }
  | { event: 'decoder-failed'; channel: 'main'; message: string }
  | { event: 'closed'; channel: string; bytes: number }
  | TapSummary;

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

/** How far the decoder may fall behind the relay before it gives up (the relay never waits for it). */
const DECODER_LAG_BYTES = 256 << 20;

/** Chunks handed to the decoder without back-pressure, up to a bound. */
class DecoderFeed implements AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  lagged = false;
  private wake: (() => void) | undefined;

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
  decoding: Promise<void> | undefined;

  constructor(
    private readonly req: TapRequest,
    private readonly emit: (e: TapEvent) => void,
    private readonly done: (m: Migration) => void,
  ) {}

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
    await this.decoding;
    this.done(this);
  }

  /** Decode and judge the main channel as it passes. */
  watch(feed: DecoderFeed): void {
    const loader = new ReferenceLoader({ capabilities: this.req.capability ?? [] });
    const report = (d: DiagnosticJson) => {
      this.diagnostics.push(d);
      this.emit({ event: 'diagnostic', diagnostic: d });
    };
    this.decoding = (async () => {
      try {
        for await (const rec of decode(feed, { name: 'main channel', capability: this.req.capability })) {
          const before = loader.diagnostics.length;
          loader.add(rec);
          this.record(rec);
          for (const d of loader.diagnostics.slice(before)) report(diagnosticJson(d));
        }
      } catch (e) {
        if (!(e instanceof StreamError)) {
          // the decoder itself failed (not the stream): the relay went on; say so, and leave the status to the relay
          this.decoderStopped = true;
          this.emit({ event: 'decoder-failed', channel: 'main', message: e instanceof Error ? e.message : String(e) });
          return;
        }
        if (!feed.lagged) {
          const before = loader.diagnostics.length;
          loader.streamError(e);
          for (const d of loader.diagnostics.slice(before)) report(diagnosticJson(d));
        }
      }
      if (feed.lagged) {
        this.decoderStopped = true;
        this.emit({ event: 'decoder-lagged', channel: 'main', bytes: DECODER_LAG_BYTES });
      } else {
        const before = loader.diagnostics.length;
        loader.finish();
        for (const d of loader.diagnostics.slice(before)) report(diagnosticJson(d));
      }
    })();
  }

  private record(rec: MainRecord): void {
    if (rec.depth) return;
    if (rec.kind === 'section')
      this.emit({
        event: 'section',
        channel: 'main',
        offset: rec.offset,
        section: rec.section,
        sectionId: rec.sectionId,
        idstr: rec.idstr,
      });
    else if (rec.kind === 'command')
      this.emit({ event: 'command', channel: 'main', offset: rec.offset, command: rec.name });
    else if (rec.kind === 'eof') {
      this.sawEof = true;
      this.emit({ event: 'eof', channel: 'main', offset: rec.offset });
    }
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
    const server = createServer((source) => {
      current ??= new Migration(req, emit, ended);
      relay(source, current, req, emit);
    });
    const ended = (m: Migration) => {
      const s = m.summary();
      summaries.push(s);
      emit(s);
      if (current === m) current = undefined;
      if (req.once) server.close(() => resolve(summaries));
    };
    server.on('error', reject);
    server.listen(req.listen.port, req.listen.host, () => {
      const a = server.address();
      emit({ event: 'listening', host: req.listen.host, port: typeof a === 'object' && a ? a.port : req.listen.port });
    });
  });
}

/**
 * One connection: connected onwards at once (a QEMU 7.2 destination takes the first
 * connection for the main channel, so the order in which the source connected is kept),
 * forwarded both ways, and named by its first bytes. A connection closed before it sent
 * four bytes is closed on the other side too and reported as no channel.
 */
function relay(source: Socket, m: Migration, req: TapRequest, emit: (e: TapEvent) => void): void {
  source.pause();
  let channel: string | undefined;
  let save: WriteStream | undefined;
  let backSave: WriteStream | undefined;
  let feed: DecoderFeed | undefined;
  let head: Buffer[] = [];
  let forward = 0;
  let back = 0;
  let failed = false;
  const name = (first: Buffer) => {
    channel = m.channelName(first);
    m.opened();
    emit({ event: 'connection', channel });
    save = m.saveFile(channel);
    if (channel === 'main') {
      feed = new DecoderFeed();
      m.watch(feed);
      backSave = m.saveFile('return-path');
    }
  };
  const take = (chunk: Buffer) => {
    forward += chunk.length;
    if (channel === undefined) {
      head.push(chunk);
      if (forward < 4) return;
      chunk = Buffer.concat(head);
      // a multifd channel is named by its id, after the magic, version and UUID of MultiFDInit
      if (be32At(chunk, 0) === MULTIFD_MAGIC && forward <= MULTIFD_INIT_ID_OFFSET) {
        head = [chunk];
        return;
      }
      head = [];
      name(chunk);
    }
    save?.write(chunk);
    feed?.push(chunk);
  };
  const destination = connect(req.to.port, req.to.host, () => {
    source.on('data', take);
    source.pipe(destination);
    destination.pipe(source);
    source.resume();
  });
  destination.on('data', (chunk: Buffer) => {
    back += chunk.length;
    backSave?.write(chunk);
  });
  let closedSides = 0;
  const close = () => {
    if (++closedSides < 2 || channel === undefined) return;
    feed?.end();
    save?.end();
    backSave?.end();
    if (channel === 'main' && back > 0) m.bytes['return-path'] = back;
    m.closed(channel, forward, failed);
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
}
