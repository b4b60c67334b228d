import { StreamError } from '../model/errors.js';
import { StreamReader } from '../io/reader.js';
import { CompareSink, MemorySink, StreamWriter, type ByteSink } from '../io/sink.js';
import { BufferSource, FileSource, type ByteSource } from '../io/source.js';
import { parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { MainChannelDecoder, type DecodeOptions } from './decode.js';
import { locateVmdesc, readVmdescJson, type VmdescLocation } from './locate-vmdesc.js';
import { ChannelEncoder, decodeSideChannel, resolveChannelKind, type AnyRecord, type ChannelKind } from './channels.js';
import type { DecodeWarning, MainRecord } from '../model/records.js';

/** How to open a main stream: a vmdescription to use instead of its own, page size, capabilities. */
export interface OpenOptions extends Omit<DecodeOptions, 'vmdesc' | 'onWarning'> {
  /** a vmdescription to use instead of the stream's own (--vmsd FILE) */
  vmdesc?: VmDescription;
  /** do not look for the stream's own vmdescription ahead of time */
  noLocate?: boolean;
  /**
   * @internal a BufferSource's bytes are read where they are, not copied into the reader's
   * buffer: record payloads are then views of them (the reference loader only reads them)
   */
  readInPlace?: boolean;
}

/** A main stream opened for decoding: its records, and the warnings found so far. */
export interface OpenedStream {
  source: ByteSource;
  /** @internal the reader under the decoder (the command line reports its position) */
  reader: StreamReader;
  /** @internal */
  decoder: MainChannelDecoder;
  warnings: DecodeWarning[];
  /** where the vmdescription was found ahead of time, if it was */
  vmdescOffset: number | undefined;
  /** The records, decoded as they are pulled (synchronously). */
  records(): Generator<MainRecord>;
  /** Close the source. */
  close(): void;
}

/** A stream's own vmdescription found from its end: where, and what it parses to (or why it does not). */
export type OwnVmdescription =
  | { at: VmdescLocation; vmdesc: VmDescription; problem?: undefined }
  | { at: VmdescLocation; vmdesc?: undefined; problem: string };

/** The vmdescription a seekable stream ends with, read before the stream is decoded; undefined when there is none. */
export function ownVmdescription(source: ByteSource): OwnVmdescription | undefined {
  const at = locateVmdesc(source);
  if (!at) return undefined;
  try {
    return { at, vmdesc: parseVmDescription(readVmdescJson(source, at)) };
  } catch (e) {
    return { at, problem: `unreadable vmdescription JSON: ${(e as Error).message}` };
  }
}

/** Open a main-channel stream for decoding, finding its vmdescription first when it can. */
export function openMainStream(source: ByteSource, opts: OpenOptions = {}): OpenedStream {
  const warnings: DecodeWarning[] = [];
  let vmdesc = opts.vmdesc;
  let vmdescOffset: number | undefined;
  if (!vmdesc && !opts.noLocate) {
    const own = ownVmdescription(source);
    if (own?.vmdesc) {
      vmdesc = own.vmdesc;
      vmdescOffset = own.at.offset;
    } else if (own) warnings.push({ offset: own.at.jsonOffset, path: 'vmdescription', message: own.problem });
  }
  const whole = opts.readInPlace && source instanceof BufferSource ? source.whole() : undefined;
  const reader = (whole && StreamReader.inMemory(whole, source.name, 0)) ?? new StreamReader(source);
  const vmdescLater = !vmdesc && !source.seekable;
  const decoder = new MainChannelDecoder(reader, { ...opts, vmdesc, vmdescLater, onWarning: (w) => warnings.push(w) });
  return {
    source,
    reader,
    decoder,
    warnings,
    vmdescOffset,
    records: () => decoder.records(),
    close: () => source.close(),
  };
}

/** Open a main-stream file for synchronous decoding (see `decode` for an async iterator). */
export function openMainFile(path: string, opts: OpenOptions = {}): OpenedStream {
  return openMainStream(new FileSource(path), opts);
}

/** Whether decoding and re-encoding gave back the input byte for byte, and where it first did not. */
export interface RoundtripResult {
  identical: boolean;
  /** first offset where re-encoded bytes differ from the input */
  firstDifference?: number;
  records: number;
  bytes: number;
  /** the decode error, if the stream is invalid */
  error?: StreamError;
  warnings: DecodeWarning[];
}

/**
 * Decode and re-encode, comparing with the input as the bytes are produced (no copy of either is
 * held). `again` is the same input opened a second time: it is read only for the bytes the
 * decoder no longer holds when their record is compared.
 */
export function roundtripSource(
  source: ByteSource,
  again: ByteSource,
  opts: OpenOptions & { kind?: ChannelKind | 'auto' } = {},
): RoundtripResult {
  const kind = resolveChannelKind(source, opts.kind);
  let n = 0;
  let warnings: DecodeWarning[] = [];
  let reader: StreamReader;
  /** hands every record to `take`: a main channel's pages with no generator between (eachRecord) */
  let each: (take: (rec: AnyRecord) => void) => void;
  if (kind === 'main') {
    const s = openMainStream(source, opts);
    warnings = s.warnings;
    reader = s.reader;
    each = (take) => s.decoder.eachRecord(take);
  } else {
    reader = new StreamReader(source);
    const records = decodeSideChannel(kind, reader, opts.pageSize);
    each = (take) => {
      for (const rec of records) take(rec);
    };
  }
  // Each record's encoding is compared as soon as it is written, with the bytes the decoder has
  // just read it from, still in its buffer: the input is read once. Only bytes the decoder no
  // longer holds (a record that began before its last refill) are read again from `again`.
  // Payloads go to the comparison uncopied (StreamWriter's directFrom); one written from the
  // decoder's buffer at its own offset is the input itself.
  const sink = new CompareSink(again, reader);
  const w = new StreamWriter(sink, undefined, 512);
  const enc = new ChannelEncoder(w);
  // what is written is compared before the decoder's buffer moves, not after every record
  // (a flush a record was a third of roundtrip's time over validate's on a RAM stream)
  reader.beforeMove = () => w.flush();
  try {
    each((rec) => {
      enc.write(rec);
      n++;
    });
    enc.finish();
  } catch (e) {
    if (e instanceof StreamError) return { identical: false, records: n, bytes: reader.offset, error: e, warnings };
    throw e;
  }
  const diff = sink.finish();
  return { identical: diff === undefined, firstDifference: diff, records: n, bytes: w.position, warnings };
}

/** Encode a record sequence into a sink. */
export function encodeRecords(records: Iterable<AnyRecord>, sink: ByteSink): number {
  const w = new StreamWriter(sink);
  const enc = new ChannelEncoder(w);
  for (const r of records) enc.write(r);
  enc.finish();
  return w.position;
}

/** Encode records into a byte array (small streams: tests, the save engine's pieces). */
export function encodeToBytes(records: Iterable<AnyRecord>): Uint8Array {
  const sink = new MemorySink();
  encodeRecords(records, sink);
  return sink.bytes();
}
