import { Command, InvalidArgumentError, Option } from 'commander';
import { registerDump } from './dump.js';
import { registerEncode } from './encode.js';
import { decidedExitCode, reportError } from './errors.js';
import { registerRoundtrip } from './roundtrip.js';
import { registerStats } from './stats.js';
import { registerValidate } from './validate.js';
import { collectCapability } from './common.js';
import { registerGen } from './gen.js';
import { registerFuzz } from './fuzz.js';

export function buildProgram(): Command {
  const program = new Command('migstream')
    .description('Read, check and write QEMU live-migration (savevm) streams byte-exactly')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });
  registerDump(program);
  registerEncode(program);
  registerRoundtrip(program);
  registerStats(program);
  registerValidate(program);
  registerGen(program);
  registerFuzz(program);
  return program;
}

/** Shared options that describe what the stream alone does not say. */
export function streamOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--vmsd <file>', 'vmdescription JSON to decode device sections with (instead of the stream\'s own)'))
    .addOption(new Option('--page-size <bytes>', 'TARGET_PAGE_SIZE when the stream does not carry target-page-bits').argParser(parsePositiveInt))
    .addOption(new Option('--capability <name>', 'destination capability (QEMU name), repeatable').argParser(collectCapability).default([]));
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 512 || n > 1 << 30 || (n & (n - 1)) !== 0) throw new InvalidArgumentError('a power of two from 512 to 2^30 (x86: 4096)');
  return n;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return decidedExitCode();
  } catch (e) {
    return reportError(e);
  }
}
