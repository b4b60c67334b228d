/**
 * Opening what a user names: a stream file (or `-`), a --vmsd description. Failures are
 * UsageErrors in words ("cannot open x.mig: no such file or directory"), not errno codes.
 */
import { readFileSync } from 'node:fs';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { UsageError } from '../model/errors.js';
import { FileSource } from '../io/source.js';
import { ioErrorWords } from '../io/io-words.js';
import { parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';

/** What the stream alone does not say, given by the user. */
export interface StreamRequest {
  /** a vmdescription JSON file to decode device sections with, instead of the stream's own */
  vmsd?: string;
  /** TARGET_PAGE_SIZE when the stream does not carry target-page-bits */
  pageSize?: number;
  /** destination capabilities (QEMU names) */
  capability?: string[];
  /** keep every byte (IR): read mapped-ram holes too */
  exact?: boolean;
}

export function openSource(path: string): FileSource {
  try {
    return new FileSource(path);
  } catch (e) {
    throw new UsageError(`cannot open ${path}: ${ioErrorWords(e as NodeJS.ErrnoException)}`);
  }
}

/** Open a main stream for reading what it says (not for re-encoding it). */
export function openStreamFile(path: string, o: StreamRequest): OpenedStream {
  const vmdesc = readVmsdFile(o.vmsd);
  return openMainStream(openSource(path), {
    vmdesc,
    pageSize: o.pageSize,
    capabilities: o.capability ?? [],
    skipAbsentMappedRamPages: !o.exact,
  });
}

/** The vmdescription given with --vmsd, if any. */
export function readVmsdFile(path: string | undefined): VmDescription | undefined {
  if (!path) return undefined;
  try {
    return parseVmDescription(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot use --vmsd ${path}: ${(e as Error).message}`);
  }
}
