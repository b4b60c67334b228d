/** The encode use case: the stream an IR document describes, written to a file or stdout. */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { encodeRecords } from '../codec/open.js';
import { UsageError, type StreamErrorJson } from '../model/errors.js';
import { readIr } from '../formats/ir.js';
import { FileSink } from '../io/sink.js';
import { FileSource } from '../io/source.js';
import { observedSink } from './progress.js';

/** The decode error an IR of an invalid stream records: the stream written stops where it broke. */
export type RecordedDecodeError = Partial<StreamErrorJson>;

/** What encoding an IR file did: the decode error the IR recorded, if its stream ended in one (the bytes up to it are written). */
export interface EncodeOutcome {
  recordedError?: RecordedDecodeError;
}

/**
 * `source`: the input file payloads refer to (default: the one the IR names, relative to the
 * IR's directory, or absolute).
 */
export function encodeIrFile(irPath: string, output: string, source?: string): EncodeOutcome {
  let src: FileSource | undefined;
  let ir;
  try {
    ir = readIr(irPath, (h) => {
      // the IR names its input relative to itself (IRs written before that: relative to where
      // dump ran, so the name as given is tried second)
      const candidates = source ? [source] : [resolve(dirname(irPath), h.source), h.source];
      const found = candidates.find((p) => p !== '-' && existsSync(p));
      src = found ? new FileSource(found) : undefined;
      return src;
    });
  } catch (e) {
    throw new UsageError(`cannot read IR ${irPath}: ${(e as Error).message}`);
  }
  const sink = observedSink(new FileSink(output), output, ir.header.sourceSize);
  try {
    encodeRecords(ir.records, sink);
  } catch (e) {
    throw new UsageError(`cannot encode ${irPath}: ${(e as Error).message}`);
  } finally {
    sink.close();
    src?.close();
  }
  return { recordedError: ir.trailer().error };
}
