import { Command } from 'commander';
import { registerDump } from './dump.js';
import { registerEncode } from './encode.js';
import { decidedExitCode, reportError } from './errors.js';
import { registerRoundtrip } from './roundtrip.js';
import { registerStats } from './stats.js';
import { registerValidate } from './validate.js';
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

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return decidedExitCode();
  } catch (e) {
    return reportError(e);
  }
}
