/**
 * The model use case: a stream file to its machine model (JSON plus side files in
 * `<stem>.model/` next to it), proven by generating the stream back from what was written
 * and comparing it with the input byte for byte. And the way back: a model file to its
 * stream (`gen MODEL.json`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CompareSink, FileSink, type ByteSink } from '../io/sink.js';
import { StreamError, UsageError } from '../model/errors.js';
import { encodeModel, ModelError } from '../generator/engine.js';
import { generateChannel } from '../generator/multifd-channels.js';
import { encodeRecords } from '../codec/open.js';
import { decodeMultifdChannel } from '../multifd/codec.js';
import { StreamReader } from '../io/reader.js';
import { extractModel } from '../generator/extract.js';
import { MODEL_FORMAT, modelStats, type MachineModel, type ModelStats } from '../generator/model.js';
import { DirectoryFiles, DirectoryFilesWriter } from '../generator/side-files.js';
import { StateShapeError } from '../generator/state-values.js';
import { checkModel } from '../generator/schema-check.js';
import { openStreamFile, openSource } from './open.js';

export interface ModelRequest {
  /** the stream's multifd channel files, in channel id order */
  multifd?: string[];
  /** the QEMU release, when the stream has no configuration section to name it */
  qemu?: string;
  pageSize?: number;
}

export interface ModelOutcome {
  model: MachineModel;
  stats: ModelStats;
  /** the model file and its side files */
  written: string[];
  /** generating from the written model gives the input back, byte for byte */
  identical: boolean;
  firstDifference?: number;
  /** the input (main stream or channel) where the first difference is */
  differingFile?: string;
}

/** Side files of OUT.json go to OUT.model/ next to it. */
function sideDir(output: string): string {
  return `${basename(output).replace(/\.json$/, '')}.model/`;
}

export function modelOfFile(input: string, output: string, o: ModelRequest = {}): ModelOutcome {
  if (input === '-') throw new UsageError('model reads its input twice (to prove the model): give a file, not stdin');
  if (output === '-') throw new UsageError('model writes side files next to its output: give a file name, not -');
  const base = dirname(resolve(output));
  const prefix = sideDir(output);
  rmSync(join(base, prefix), { recursive: true, force: true });
  const files = new DirectoryFilesWriter(base);
  const stream = openStreamFile(input, { pageSize: o.pageSize, exact: true });
  const channelSources = (o.multifd ?? []).map((f) => openSource(f));
  let model: MachineModel;
  try {
    const multifd = channelSources.map((src) => decodeMultifdChannel(new StreamReader(src), o.pageSize));
    model = extractModel(stream.records(), files, {
      qemu: o.qemu,
      sidePrefix: prefix,
      pageSize: o.pageSize,
      multifd,
    });
    model.ram.blocks.forEach((b) => {
      if (b.image) files.setLength(b.image, b.usedLength);
    });
  } catch (e) {
    if (e instanceof ModelError) throw new UsageError(`${input}: ${e.message}`);
    throw e;
  } finally {
    files.close();
    stream.close();
    for (const c of channelSources) c.close();
  }
  writeFileSync(output, JSON.stringify(model, null, 1) + '\n');
  const written = [output, ...sideFiles(model).map((f) => join(dirname(output), f))];
  // the proof: every channel generated from what was written equals its input
  const out: ModelOutcome = { model, stats: modelStats(model), written, identical: true };
  const compare = (file: string, generate: (sink: ByteSink) => void): void => {
    const sink = new CompareSink(openSource(file));
    generate(sink);
    const at = sink.finish();
    if (at !== undefined && out.identical) {
      out.identical = false;
      out.firstDifference = at;
      out.differingFile = file;
    }
  };
  compare(input, (sink) => generateToSink(model, base, sink));
  (o.multifd ?? []).forEach((f, i) => compare(f, (sink) => generateChannelToSink(model, base, i, sink)));
  return out;
}

function sideFiles(m: MachineModel): string[] {
  const out = m.ram.blocks.flatMap((b) => (b.image ? [b.image] : []));
  if (m.ram.historyFile) out.push(m.ram.historyFile);
  if (m.ram.encodedFile) out.push(m.ram.encodedFile);
  if (m.deviceDataFile) out.push(m.deviceDataFile);
  return out;
}

export function readModel(path: string): MachineModel {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read model ${path}: ${(e as Error).message}`);
  }
  const problems = checkModel(v);
  if (problems.length)
    throw new UsageError(`${path} is not a valid model:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return v as MachineModel;
}

/** Is this JSON document a machine model (rather than a VFIO scenario)? */
export function isModelDocument(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as { format?: unknown }).format === MODEL_FORMAT;
}

/** Generate a model's main channel into a sink; side files are read relative to `dir`. Returns the bytes written. */
export function generateToSink(m: MachineModel, dir: string, sink: ByteSink): number {
  return withModelErrors(dir, (files) => encodeModel(m, files, sink));
}

/** Side files opened from `dir` for `run`; the engine's errors become usage errors in words. */
function withModelErrors<T>(dir: string, run: (files: DirectoryFiles) => T): T {
  const files = new DirectoryFiles(dir);
  try {
    return run(files);
  } catch (e) {
    if (e instanceof ModelError || e instanceof StateShapeError) throw new UsageError(`the model: ${e.message}`);
    if (e instanceof StreamError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && err.path) throw new UsageError(`a side file of the model is missing: ${err.path}`);
    throw e;
  } finally {
    files.close();
  }
}

/** One multifd channel of a model into a sink. */
export function generateChannelToSink(m: MachineModel, dir: string, index: number, sink: ByteSink): number {
  return withModelErrors(dir, (files) => encodeRecords(generateChannel(m, files, index), sink));
}

/**
 * gen MODEL.json -o OUT: the stream QEMU would write for the model, and its multifd channels
 * as `<stem>.multifd<N>.bin` in `multifdDir` (default: next to OUT). Returns the files written.
 */
export function generateModelFile(modelPath: string, output: string, multifdDir?: string): string[] {
  const m = readModel(modelPath);
  const dir = dirname(resolve(modelPath));
  const channels = m.multifd?.channels.length ?? 0;
  if (channels && output === '-' && !multifdDir)
    throw new UsageError('the model has multifd channels: with -o - give --multifd-dir DIR for them');
  const written: string[] = [];
  const into = (path: string, generate: (sink: ByteSink) => void): void => {
    const sink = new FileSink(path);
    try {
      generate(sink);
    } finally {
      sink.close();
    }
    if (path !== '-') written.push(path);
  };
  into(output, (sink) => generateToSink(m, dir, sink));
  const stem = output === '-' ? 'stdout' : basename(output).replace(/\.mig$/, '');
  for (let i = 0; i < channels; i++)
    into(join(multifdDir ?? dirname(output), `${stem}.multifd${i}.bin`), (sink) =>
      generateChannelToSink(m, dir, i, sink),
    );
  return written;
}
