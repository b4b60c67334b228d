/**
 * The stats use case: figures per section, per RAMBlock and per migration phase of a main
 * stream; a multifd channel's packet figures; a return-path capture's messages. Returns data;
 * printing it (a table, JSON) is the command line's job.
 */
import { UsageError } from '../model/errors.js';
import { StreamError } from '../model/errors.js';
import { StreamSummary } from '../formats/summary.js';
import { PhaseTracker, type PhaseStats } from '../formats/phases.js';
import { decodeSideChannel, resolveChannelKind, type ChannelKind } from '../codec/channels.js';
import { summarizeMultifdChannel, type MultifdSummary } from '../multifd/summary.js';
import { StreamReader } from '../io/reader.js';
import type { ByteSource } from '../io/source.js';
import { openSource, openStreamFile, type StreamRequest } from './open.js';

/** How many return-path messages of one type, and their bytes. */
export interface ReturnPathMessageStats {
  name: string;
  count: number;
  bytes: number;
}

/** What `stats` reports for a main stream (sections, phases), a multifd channel, or a return-path capture. */
export type StatsResult =
  | {
      channel: 'main';
      summary: StreamSummary;
      phases: PhaseStats[];
      error?: StreamError;
      /** the multifd channels given with it, in the order given */
      multifd: MultifdChannelStats[];
    }
  | { channel: 'multifd'; summary: MultifdSummary; error?: StreamError }
  | { channel: 'return-path'; bytes: number; messages: ReturnPathMessageStats[]; error?: StreamError };

/** A multifd channel capture read beside its main stream. */
export interface MultifdChannelStats {
  file: string;
  summary: MultifdSummary;
  error?: StreamError;
}

/** What `stats` is told: which channel kind the file is (default: detected), and what the stream does not say. */
export interface StatsRequest extends StreamRequest {
  kind?: ChannelKind | 'auto';
  /** multifd channel captures of a main stream, each summed up beside it */
  multifd?: string[];
}

/** Bytes and records per section, device, phase or channel (`migstream stats`). */
export function streamStats(file: string, o: StatsRequest = {}): StatsResult {
  const src = openSource(file, o.snapshot);
  const kind = resolveChannelKind(src, o.kind);
  if (kind === 'multifd') return { channel: 'multifd', ...multifdStats(file, src, o.pageSize) };
  if (kind === 'cpr') {
    src.close();
    throw new UsageError(`${file} is a CPR state channel: \`dump --format summary\` lists its descriptors`);
  }
  if (kind === 'return-path') {
    const byName = new Map<string, ReturnPathMessageStats>();
    let bytes = 0;
    let error: StreamError | undefined;
    try {
      for (const rec of decodeSideChannel('return-path', new StreamReader(src), o.pageSize)) {
        bytes += rec.length;
        const name = rec.name;
        const m = byName.get(name) ?? { name, count: 0, bytes: 0 };
        m.count++;
        m.bytes += rec.length;
        byName.set(name, m);
      }
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      error = e;
    } finally {
      src.close();
    }
    return { channel: 'return-path', bytes, messages: [...byName.values()], error };
  }
  src.close();
  const s = openStreamFile(file, o);
  const summary = new StreamSummary();
  const phases = new PhaseTracker();
  let error: StreamError | undefined;
  try {
    s.decoder.eachRecord((rec) => {
      summary.closeOpenSection(rec);
      summary.add(rec);
      phases.add(rec);
    });
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    error = e;
  } finally {
    s.close();
  }
  const multifd = (o.multifd ?? []).map((f) => multifdStats(f, openSource(f), o.pageSize));
  return { channel: 'main', summary, phases: phases.result(), error, multifd };
}

function multifdStats(file: string, src: ByteSource, pageSize: number | undefined): MultifdChannelStats {
  try {
    return { file, ...summarizeMultifdChannel(src, pageSize) };
  } finally {
    src.close();
  }
}
