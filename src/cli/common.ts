import { InvalidArgumentError } from 'commander';
import { MIGRATION_CAPABILITIES } from '../../grammar/capabilities.js';
import { readFileSync } from 'node:fs';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { UsageError } from '../errors.js';
import { FileSource } from '../io/source.js';
import { parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { warnLine } from './errors.js';

export interface StreamCliOptions {
  vmsd?: string;
  pageSize?: number;
  capability?: string[];
  /** keep every byte (IR): read mapped-ram holes too */
  exact?: boolean;
}

export function openSource(path: string): FileSource {
  try {
    return new FileSource(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`cannot open ${path}: ${ioErrorWords(err)}`);
  }
}

/** Open a main stream for reading what it says (not for re-encoding it). */
export function openFromCli(path: string, o: StreamCliOptions): OpenedStream {
  const vmdesc = readVmsdOption(o.vmsd);
  return openMainStream(openSource(path), { vmdesc, pageSize: o.pageSize, capabilities: o.capability ?? [], skipAbsentMappedRamPages: !o.exact });
}

/** The vmdescription given with --vmsd, if any. */
export function readVmsdOption(path: string | undefined): VmDescription | undefined {
  if (!path) return undefined;
  try {
    return parseVmDescription(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot use --vmsd ${path}: ${(e as Error).message}`);
  }
}

export function printWarnings(s: OpenedStream, max = 20): void {
  const ws = s.warnings;
  for (const w of ws.slice(0, max)) warnLine(`at 0x${w.offset.toString(16)}: ${w.path ? w.path + ': ' : ''}${w.message}`);
  if (ws.length > max) warnLine(`${ws.length - max} more warnings`);
}

const IO_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory (give a stream file)',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
};

/** An I/O error in words: "no such file or directory" rather than ENOENT. */
export function ioErrorWords(err: NodeJS.ErrnoException): string {
  return (err.code && IO_WORDS[err.code]) ?? err.code ?? err.message;
}

/** A repeatable option's parser: each use appends its value. */
export function collectValue(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** A repeatable --capability: QEMU's names only (a typo would silently change the verdict). */
export function collectCapability(v: string, prev: string[]): string[] {
  if (!(MIGRATION_CAPABILITIES as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`not a QEMU migration capability; one of: ${MIGRATION_CAPABILITIES.join(', ')}`);
  }
  return [...prev, v];
}

