import { Command } from 'commander';
import { ExitStatus, reportError } from './errors.js';
import { setNoColor } from './color.js';
import { setQuiet } from './progress.js';
import { MIGSTREAM_VERSION } from '../model/version.js';

type Register = (program: Command, exit: ExitStatus) => void;

/**
 * The commands in the order `--help` lists them, each loaded only when it is needed: a run
 * of one command loads that command's modules and no other's (start-up time is most of a
 * small file's run; the generator's JSON Schema checker alone is a quarter of the code).
 */
const COMMANDS: readonly (readonly [string, () => Promise<Register>])[] = [
  ['dump', async () => (await import('./dump.js')).registerDump],
  ['encode', async () => (await import('./encode.js')).registerEncode],
  ['roundtrip', async () => (await import('./roundtrip.js')).registerRoundtrip],
  ['stats', async () => (await import('./stats.js')).registerStats],
  ['validate', async () => (await import('./validate.js')).registerValidate],
  ['gen', async () => (await import('./gen.js')).registerGen],
  ['fuzz', async () => (await import('./fuzz.js')).registerFuzz],
  ['profile', async () => (await import('./profile.js')).registerProfile],
  ['model', async () => (await import('./model.js')).registerModel],
  ['analyze', async () => (await import('./analyze.js')).registerAnalyze],
  ['diff', async () => (await import('./diff.js')).registerDiff],
  ['libvirt-xml', async () => (await import('./libvirt-xml.js')).registerLibvirtXml],
  ['snapshots', async () => (await import('./snapshots.js')).registerSnapshots],
  ['tap', async () => (await import('./tap.js')).registerTap],
];

/**
 * The program with the command `argv` names, or with every command when it names none
 * (`--help`, `help CMD`, a mistyped name: commander then lists or suggests them all).
 */
export async function buildProgram(exit: ExitStatus, argv: readonly string[] = []): Promise<Command> {
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
  const named = argv[2];
  const only = COMMANDS.find(([name]) => name === named);
  // --version (and -V) before any command needs none of them
  const needed = only ? [only] : named === '--version' || named === '-V' ? [] : COMMANDS;
  for (const register of await Promise.all(needed.map(([, load]) => load()))) register(program, exit);
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
    const args = argv.filter((a) => !global.has(a));
    await (await buildProgram(exit, args)).parseAsync(args);
    return exit.code;
  } catch (e) {
    return reportError(e);
  }
}
