import { InvalidArgumentError, Option, type Command } from 'commander';
import { MIGRATION_CAPABILITIES } from '../../grammar/capabilities.js';
import { readFileSync } from 'node:fs';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { UsageError } from '../model/errors.js';
import { FileSource } from '../io/source.js';
import { parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { warnLine } from './errors.js';
import { ioErrorWords } from './io-words.js';

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
  return openMainStream(openSource(path), {
    vmdesc,
    pageSize: o.pageSize,
    capabilities: o.capability ?? [],
    skipAbsentMappedRamPages: !o.exact,
  });
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
  for (const w of ws.slice(0, max))
    warnLine(`at 0x${w.offset.toString(16)}: ${w.path ? w.path + ': ' : ''}${w.message}`);
  if (ws.length > max) warnLine(`${ws.length - max} more warnings`);
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

/** Shared options that describe what the stream alone does not say. */
export function streamOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--vmsd <file>', "vmdescription JSON to decode device sections with (instead of the stream's own)"),
    )
    .addOption(
      new Option('--page-size <bytes>', 'TARGET_PAGE_SIZE when the stream does not carry target-page-bits').argParser(
        parsePositiveInt,
      ),
    )
    .addOption(
      new Option('--capability <name>', 'destination capability (QEMU name), repeatable')
        .argParser(collectCapability)
        .default([]),
    );
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 512 || n > 1 << 30 || (n & (n - 1)) !== 0)
    throw new InvalidArgumentError('a power of two from 512 to 2^30 (x86: 4096)');
  return n;
}
