import { InvalidArgumentError, Option, type Command } from 'commander';
import { MIGRATION_CAPABILITIES } from '../../grammar/capabilities.js';
import type { OpenedStream } from '../codec/open.js';
import type { DecodeWarning } from '../model/records.js';
import type { StreamRequest } from '../app/open.js';
import { warnLine } from './errors.js';

/** The options every stream-reading command takes (see streamOptions). */
export type StreamCliOptions = StreamRequest;

export function printWarnings(s: OpenedStream | DecodeWarning[], max = 20): void {
  const ws = Array.isArray(s) ? s : s.warnings;
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
    )
    .addOption(snapshotOption());
}

/** --snapshot: which internal snapshot of a qcow2 image to read the VM state of. */
export function snapshotOption(): Option {
  return new Option(
    '--snapshot <id|name>',
    'a qcow2 image: the internal snapshot whose VM state to read (default: the newest; migstream snapshots IMAGE lists them)',
  );
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 512 || n > 1 << 30 || (n & (n - 1)) !== 0)
    throw new InvalidArgumentError('a power of two from 512 to 2^30 (x86: 4096)');
  return n;
}

/**
 * A command's "Examples:" block. Each line is a shell command run from the repository's root on
 * its shipped fixtures (test/cli-help.test.ts runs every one); a trailing `# exit 1: …` comment
 * says the example shows a failure on purpose.
 */
export function withExamples(cmd: Command, lines: readonly string[]): Command {
  return cmd.addHelpText('after', '\nExamples:\n' + lines.map((l) => `  ${l}`).join('\n'));
}
