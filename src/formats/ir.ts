/**
 * The lossless IR: JSON with one record per line, so dumps and re-encodes of streams of
 * any size run in bounded memory. Byte payloads are `{"$hex"}` when small, `{"$ref"}` to
 * the input file (default) or `{"$base64"}` (--inline); 64-bit integers are `{"$u64"}`.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { AnyRecord, ChannelKind } from '../codec/channels.js';
import type { DecodeWarning } from '../model/records.js';
import type { StreamError } from '../model/errors.js';
import { readAt, type ByteSource } from '../io/source.js';

export const IR_FORMAT = 'migstream-ir';
export const IR_VERSION = 1;
const SMALL = 64;

export interface IrHeader {
  format: typeof IR_FORMAT;
  version: number;
  channel: ChannelKind;
  /** the input the `$ref` payloads point into */
  source: string;
  sourceSize?: number;
}

export interface IrTrailer {
  warnings: DecodeWarning[];
  error?: ReturnType<StreamError['toJSON']>;
}

export type DataMode = 'ref' | 'inline';

/** Serialize one record as a single JSON line. `offsetOf` gives the input offset of a payload view, if it has one. */
export function recordToIrLine(
  rec: AnyRecord,
  mode: DataMode,
  offsetOf: (b: Uint8Array) => number | undefined,
): string {
  return JSON.stringify(rec, (_k, v: unknown) => {
    if (typeof v === 'bigint') return { $u64: '0x' + v.toString(16) };
    if (v instanceof Uint8Array) {
      if (v.length <= SMALL) return { $hex: Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex') };
      if (mode === 'ref') {
        const at = rec.kind === 'raw' ? rec.offset : offsetOf(v);
        if (at !== undefined) return { $ref: { offset: at, length: v.length } };
      }
      return { $base64: Buffer.from(v.buffer, v.byteOffset, v.length).toString('base64') };
    }
    return v;
  });
}

/** Turns `$`-tagged values back into bytes and BigInts. */
export function irReviver(source: ByteSource | undefined): (key: string, value: unknown) => unknown {
  return (_k, v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    if (typeof o.$u64 === 'string') return BigInt(o.$u64);
    if (typeof o.$hex === 'string') return new Uint8Array(Buffer.from(o.$hex, 'hex'));
    if (typeof o.$base64 === 'string') return new Uint8Array(Buffer.from(o.$base64, 'base64'));
    if (o.$ref && typeof o.$ref === 'object') {
      const { offset, length } = o.$ref as { offset: number; length: number };
      if (!source) throw new Error('the IR refers to its input file, which is not available (use --source FILE)');
      const b = new Uint8Array(length);
      if (readAt(source, b, length, offset) < length)
        throw new Error(`the IR's input ${source.name} ends before ${offset + length}`);
      return b;
    }
    return v;
  };
}

/** Writes an IR document line by line. */
export class IrWriter {
  private first = true;
  constructor(
    private readonly out: (s: string) => void,
    header: IrHeader,
  ) {
    out('{\n');
    for (const [k, v] of Object.entries(header))
      if (v !== undefined) out(`${JSON.stringify(k)}: ${JSON.stringify(v)},\n`);
    out('"records": [\n');
  }
  record(line: string): void {
    this.out(this.first ? line : ',\n' + line);
    this.first = false;
  }
  end(trailer: IrTrailer): void {
    this.out('\n],\n');
    this.out(`"warnings": ${JSON.stringify(trailer.warnings)}`);
    if (trailer.error) this.out(`,\n"error": ${JSON.stringify(trailer.error)}`);
    this.out('\n}\n');
  }
}

/** Lines of a UTF-8 text file, read in 1 MiB chunks (an IR of a large stream never sits in memory whole). */
function* fileLines(path: string): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const text = rest + decoder.write(buf.subarray(0, n));
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      yield* lines;
    }
    rest += decoder.end();
    if (rest) yield rest;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an IR document: the header first (to open the `$ref` source), then records one
 * at a time, streaming. Documents not in the one-record-per-line layout (edited by hand)
 * are parsed whole.
 */
export interface IrDocument {
  header: IrHeader;
  records: Generator<AnyRecord>;
  /** the warnings and error recorded after the records (read once the records are consumed) */
  trailer(): Partial<IrTrailer>;
}

export function readIr(path: string, openSource: (header: IrHeader) => ByteSource | undefined): IrDocument {
  const lines = fileLines(path);
  const head: string[] = [];
  for (let l = lines.next(); !l.done; l = lines.next()) {
    if (l.value === '"records": [') {
      const header = JSON.parse(head.join('\n').replace(/,\s*$/, '') + '}') as IrHeader;
      checkHeader(header);
      const revive = irReviver(openSource(header));
      function* records(): Generator<AnyRecord> {
        for (let m = lines.next(); !m.done; m = lines.next()) {
          const line = m.value;
          if (line.startsWith(']')) return;
          const body = line.startsWith(',') ? line.slice(1) : line.endsWith(',') ? line.slice(0, -1) : line;
          if (body.length) yield JSON.parse(body, revive) as AnyRecord;
        }
      }
      const trailer = (): Partial<IrTrailer> => {
        const rest: string[] = [];
        for (let m = lines.next(); !m.done; m = lines.next()) rest.push(m.value);
        const text = rest
          .join('\n')
          .replace(/^\s*\],?/, '')
          .trim();
        if (!text) return {};
        try {
          return JSON.parse(`{${text.replace(/^,/, '')}`) as Partial<IrTrailer>;
        } catch {
          return {};
        }
      };
      return { header, records: records(), trailer };
    }
    head.push(l.value);
  }
  // not line-structured: parse the whole document
  const text = readFileSync(path, 'utf8');
  const doc = JSON.parse(text) as IrHeader & { records: unknown[] };
  checkHeader(doc);
  const whole = JSON.parse(text, irReviver(openSource(doc))) as { records: AnyRecord[] } & Partial<IrTrailer>;
  return {
    header: doc,
    records: (function* () {
      yield* whole.records;
    })(),
    trailer: () => ({ warnings: whole.warnings, error: whole.error }),
  };
}

function checkHeader(h: Partial<IrHeader>): void {
  if (h.format !== IR_FORMAT) throw new Error(`not a migstream IR document (format ${JSON.stringify(h.format)})`);
  if (h.version !== IR_VERSION) throw new Error(`IR version ${h.version} is not supported (this is ${IR_VERSION})`);
}
