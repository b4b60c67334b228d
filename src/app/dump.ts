/**
 * The dump use case: a stream (and its multifd channels) to one of the output documents,
 * written through the caller's `write` as it is produced. A stream error ends the document
 * where the stream broke and is returned, not thrown; the caller decides what it means.
 */
import { writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { DecodeWarning, MainRecord } from '../model/records.js';
import { StreamError, UsageError } from '../model/errors.js';
import { AnalyzeDump, type RamDumpMode } from '../formats/analyze.js';
import { IR_FORMAT, IR_VERSION, IrWriter, recordToIrLine } from '../formats/ir.js';
import { pyDumps, pyDumpsJson, pyWrite } from '../formats/pyjson.js';
import { RamExtractor } from '../formats/ram-extract.js';
import { VfioExtractor } from '../formats/vfio-extract.js';
import { extractMultifdDevices } from '../formats/multifd-extract.js';
import { forEachMultifdPage } from '../formats/multifd-ram.js';
import { MultifdJoin } from '../loader/multifd-load.js';
import { NEWEST_QEMU, ReferenceLoader } from '../loader/load.js';
import { StreamSummary } from '../formats/summary.js';
import { checkVmDescription } from '../vmstate/vmdesc.js';
import { decodeSideChannel, resolveChannelKind, type ChannelKind } from '../codec/channels.js';
import { isCprRecord } from '../model/channel-records.js';
import { MultifdSummary, summarizeMultifdChannel } from '../multifd/summary.js';
import { StreamReader } from '../io/reader.js';
import type { ByteSource } from '../io/source.js';
import { openSource, openStreamFile, type StreamRequest } from './open.js';

export type DumpFormat = 'analyze' | 'ir' | 'summary' | 'desc';

export interface DumpRequest extends StreamRequest {
  format: DumpFormat;
  /** ir: embed large payloads as base64 instead of referring to the input file */
  inline?: boolean;
  /** analyze: sizes | summary | hex | extract:DIR */
  ram: string;
  vfioExtract?: string;
  kind: ChannelKind | 'auto';
  /** the main stream's multifd channel files */
  multifd: string[];
  /** like analyze-migration.py -x: a directory for the RAMBlocks, desc.json and state.json */
  extract?: string;
  /** the file the document is written to (undefined or '-': stdout): the IR names its input relative to it */
  output?: string;
}

/**
 * How an IR names the input its `$ref`s point into: relative to the IR file's directory, so
 * the pair can be moved together and encoded from anywhere; absolute when the IR goes to
 * stdout (its place is not known); `-` stays `-`.
 */
function irSourcePath(input: string, output: string | undefined): string {
  if (input === '-') return input;
  if (output === undefined || output === '-') return resolve(input);
  return relative(dirname(resolve(output)), resolve(input)) || basename(input);
}

export interface DumpOutcome {
  /** where the stream broke, if it did (the document was written up to there) */
  error?: StreamError;
  /** the decoder's warnings (main channel) */
  warnings: DecodeWarning[];
  /** other things the user should know (pages that could not be extracted) */
  notes: string[];
}

/** Text output: called with each piece of the document in order. */
export type WriteText = (s: string) => void;

/** The vmdescription as analyze-migration.py's `-d desc` prints it; a JSON without "devices" is refused. */
function vmDescriptionText(json: string): string {
  return pyDumpsJson(json, checkVmDescription);
}

/**
 * `writeBytes`: where text that is already bytes (--ram hex pages) goes, in order with `write`'s
 * strings; without it, it is written as strings.
 */
export function dumpStream(
  file: string,
  o: DumpRequest,
  write: WriteText,
  writeBytes?: (bytes: Uint8Array) => void,
): DumpOutcome {
  if (o.format !== 'analyze' && (o.extract || o.vfioExtract || o.ram !== 'sizes')) {
    throw new UsageError('--ram, -x and --vfio-extract go with --format analyze');
  }
  const src = openSource(file, o.snapshot);
  const kind = resolveChannelKind(src, o.kind);
  if (kind !== 'main') return dumpSideChannel(file, src, kind, o, write);
  src.close();
  const s = openStreamFile(file, { ...o, exact: o.format === 'ir' });
  const notes: string[] = [];
  const out = { write };
  let error: StreamError | undefined;
  const each = (fn: (rec: MainRecord) => void): void => {
    try {
      // pages handed over with no generator between (eachRecord): a tenth of a 1 GiB dump's time
      s.decoder.eachRecord(fn);
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      error = e;
    }
  };
  try {
    switch (o.format) {
      case 'ir': {
        const ir = new IrWriter(out.write, {
          format: IR_FORMAT,
          version: IR_VERSION,
          channel: 'main',
          source: irSourcePath(file, o.output),
          sourceSize: s.source.size,
        });
        const mode = o.inline ? 'inline' : 'ref';
        if (mode === 'ref' && !s.source.seekable)
          throw new UsageError('dump --format ir of stdin needs --inline (payloads cannot refer to a pipe)');
        each((rec) => ir.record(recordToIrLine(rec, mode, (b) => s.reader.offsetOf(b))));
        ir.end({ warnings: s.warnings, error: error?.toJSON() });
        break;
      }
      case 'summary': {
        const sum = new StreamSummary();
        each((rec) => {
          sum.closeOpenSection(rec);
          sum.add(rec);
        });
        const channels = o.multifd.map((f) => {
          const src = openSource(f);
          const { summary, error } = summarizeMultifdChannel(src, o.pageSize);
          src.close();
          return { file: f, ...summary.toJSON(), ...(error ? { error: error.message } : {}) };
        });
        out.write(
          JSON.stringify(
            {
              file,
              ...sum.toJSON(),
              ...(channels.length ? { multifd: channels } : {}),
              warnings: s.warnings.length,
              error: error?.message ?? null,
            },
            null,
            2,
          ) + '\n',
        );
        break;
      }
      case 'desc': {
        let json: string | undefined;
        each((rec) => {
          if (rec.kind === 'vmdescription') json = rec.json;
        });
        if (json !== undefined) out.write(vmDescriptionText(json) + '\n');
        else if (!error) {
          error = new StreamError(
            'bad-vmdesc',
            s.reader.offset,
            [],
            'a QEMU_VM_VMDESCRIPTION record after QEMU_VM_EOF',
            'none (suppress-vmdesc, postcopy or a device-state-only stream)',
          );
        }
        break;
      }
      case 'analyze': {
        const ram = o.extract ? { mode: 'sizes' as const, dir: o.extract } : parseRamMode(o.ram);
        const dump = new AnalyzeDump(ram.mode, { source: s.source, offsetOf: (b) => s.reader.offsetOf(b) });
        const extract = ram.dir ? new RamExtractor(ram.dir, s.decoder.pageSize) : undefined;
        const vfio = o.vfioExtract ? new VfioExtractor(o.vfioExtract) : undefined;
        // multifd VFIO devices: the loader learns the main channel's devices in this same pass
        const loader =
          vfio && o.multifd.length
            ? new ReferenceLoader({ capabilities: ['multifd'], qemuVersion: NEWEST_QEMU })
            : undefined;
        let vmdescJson: string | undefined;
        each((rec) => {
          dump.add(rec);
          extract?.add(rec);
          vfio?.add(rec);
          loader?.add(rec);
          if (rec.kind === 'vmdescription') vmdescJson = rec.json;
        });
        if (extract && o.multifd.length) {
          // 10.0+ multifd migrations carry no pages on the main channel: they are on the channels
          const chans = o.multifd.map((f) => openSource(f));
          const res = forEachMultifdPage(chans, s.decoder.pageSize, true, (p) =>
            extract.putPage(p.block, p.addr, p.data),
          );
          for (const c of chans) c.close();
          if (res.compressedPackets)
            notes.push(`${res.compressedPackets} multifd packets carry compressed pages: not extracted`);
        }
        extract?.close();
        if (o.extract) {
          // like the script's -x: the description and the state document next to the RAMBlocks
          if (vmdescJson) writeFileSync(join(o.extract, 'desc.json'), vmDescriptionText(vmdescJson));
          writeFileSync(join(o.extract, 'state.json'), pyDumps(dump.toPy()));
        }
        if (vfio && loader) {
          // the devices that moved their state over multifd: reassemble their buffers by idx
          const channels = o.multifd.map((f) => ({ name: f, source: openSource(f) }));
          const join = new MultifdJoin(loader, channels.length, o.pageSize);
          channels.forEach((ch, i) => join.checkChannel(ch, i));
          extractMultifdDevices(join, channels, vfio);
          for (const ch of channels) ch.source.close();
        }
        vfio?.close();
        try {
          pyWrite(dump.toPy(), out.write, 4, writeBytes);
          out.write('\n');
        } finally {
          dump.close();
        }
        break;
      }
    }
  } finally {
    s.close();
  }
  return { error, warnings: s.warnings, notes };
}

function parseRamMode(v: string): { mode: RamDumpMode; dir?: string } {
  if (v === 'sizes' || v === 'summary' || v === 'hex') return { mode: v };
  if (/^extract[:=]./.test(v)) return { mode: 'sizes', dir: v.slice(8) };
  throw new UsageError(`--ram takes sizes, summary, hex or extract:DIR (got ${JSON.stringify(v)})`);
}

/** A multifd channel, return-path capture or CPR state channel: `summary` or `ir` (the others describe the main channel). */
function dumpSideChannel(
  file: string,
  src: ByteSource,
  kind: 'multifd' | 'return-path' | 'cpr',
  o: DumpRequest,
  write: WriteText,
): DumpOutcome {
  if (o.format === 'desc') {
    src.close();
    throw new UsageError(`${file} is a ${kind} channel, which has no vmdescription: use dump --format summary or ir`);
  }
  // the default (analyze) of a side channel: every packet or message, as the IR lists them
  if (o.format === 'analyze') o = { ...o, format: 'ir', inline: o.inline ?? !src.seekable };
  if (o.format === 'ir' && !o.inline && !src.seekable) {
    src.close();
    throw new UsageError('dump --format ir of stdin needs --inline (payloads cannot refer to a pipe)');
  }
  const out = { write };
  const reader = new StreamReader(src);
  const sum = new MultifdSummary();
  const messages: object[] = [];
  const ir =
    o.format === 'ir'
      ? new IrWriter(out.write, {
          format: IR_FORMAT,
          version: IR_VERSION,
          channel: kind,
          source: irSourcePath(file, o.output),
          sourceSize: src.size,
        })
      : undefined;
  let error: StreamError | undefined;
  try {
    for (const rec of decodeSideChannel(kind, reader, o.pageSize)) {
      if (ir) ir.record(recordToIrLine(rec, o.inline ? 'inline' : 'ref', (b) => reader.offsetOf(b)));
      else if (rec.kind === 'rp_message')
        messages.push({ offset: rec.offset, name: rec.name, len: rec.len, ...(rec.fields ?? {}) });
      else if (rec.kind === 'cpr_fd') messages.push({ offset: rec.offset, name: rec.name, id: rec.id });
      else if (rec.kind === 'cpr_trailing') messages.push({ offset: rec.offset, trailingBytes: rec.length });
      else if (!isCprRecord(rec)) sum.add(rec);
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    error = e;
  } finally {
    if (ir) ir.end({ warnings: [], error: error?.toJSON() });
    else {
      const body =
        kind === 'multifd'
          ? sum.toJSON()
          : kind === 'cpr'
            ? { channel: 'cpr', fds: messages }
            : { channel: 'return-path', messages };
      out.write(
        JSON.stringify(
          { file, ...body, error: error?.message ?? null },
          (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v),
          2,
        ) + '\n',
      );
    }
    src.close();
  }
  return { error, warnings: [], notes: [] };
}
