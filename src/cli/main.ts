import { Command } from 'commander';
import { registerDump } from './dump.js';
import { registerEncode } from './encode.js';
import { ExitStatus, reportError } from './errors.js';
import { registerRoundtrip } from './roundtrip.js';
import { registerStats } from './stats.js';
import { registerValidate } from './validate.js';
import { registerGen } from './gen.js';
import { registerFuzz } from './fuzz.js';
import { registerProfile } from './profile.js';
import { registerModel } from './model.js';
import { registerAnalyze } from './analyze.js';
import { registerDiff } from './diff.js';
import { registerLibvirtXml } from './libvirt-xml.js';
import { setNoColor } from './color.js';
import { setQuiet } from './progress.js';
import { MIGSTREAM_VERSION } from '../model/version.js';

export function buildProgram(exit: ExitStatus): Command {
  const program = new Command('migstream')
    .description('Read, check and write QEMU live-migration (savevm) streams byte-exactly')
    .version(MIGSTREAM_VERSION)
    .addHelpText(
      'after',
      '\nEvery command also takes --no-color (as does NO_COLOR=1; FORCE_COLOR=1 forces color) and -q/--quiet\n(no progress bar; one is drawn on stderr when it is a terminal and the work takes over a second).',
    )
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });
  registerDump(program, exit);
  registerEncode(program, exit);
  registerRoundtrip(program, exit);
  registerStats(program, exit);
  registerValidate(program, exit);
  registerGen(program);
  registerFuzz(program, exit);
  registerProfile(program);
  registerModel(program, exit);
  registerAnalyze(program, exit);
  registerDiff(program, exit);
  registerLibvirtXml(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const exit = new ExitStatus();
    // --no-color goes with any command (and before or after it): taken out before commander sees it
    setNoColor(argv.includes('--no-color'));
    // so does --quiet (-q): no progress bar
    setQuiet(argv.includes('--quiet') || argv.includes('-q'));
    const global = new Set(['--no-color', '--quiet', '-q']);
    await buildProgram(exit).parseAsync(argv.filter((a) => !global.has(a)));
    return exit.code;
  } catch (e) {
    return reportError(e);
  }
}
