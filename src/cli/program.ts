import { Command } from 'commander';
import { ExitStatus, reportError } from './errors.js';
import { setNoColor } from './color.js';
import { setQuiet } from './progress.js';
import { MIGSTREAM_VERSION } from '../model/version.js';
import { withoutGlobalFlags } from './argv.js';
import { printStdout } from './output.js';

/** What each command module exports: it adds its command to the program. */
export type Register = (program: Command, exit: ExitStatus) => void;

/** Commands by name, in the order `--help` lists them, each loaded when it is needed. */
export type CommandTable = readonly (readonly [string, () => Promise<Register>])[];

/**
 * The program with the command `argv` names, or with every command of `commands` when it names
 * none (`--help`, `help CMD`, a mistyped name: commander then lists or suggests them all).
 */
export async function buildProgram(
  exit: ExitStatus,
  argv: readonly string[],
  commands: CommandTable,
): Promise<Command> {
  const program = new Command('migstream')
    .description('Read, check and write QEMU live-migration (savevm) streams byte-exactly')
    .version(MIGSTREAM_VERSION)
    .addHelpText(
      'after',
      '\nEvery command also takes --no-color (as does NO_COLOR=1; FORCE_COLOR=1 forces color) and -q/--quiet\n(no progress bar; one is drawn on stderr when it is a terminal and the work takes over a second).',
    )
    .exitOverride()
    .showHelpAfterError()
    // help goes out as any output does: all of it to a slow reader, and a reader that closes early
    // (`--help | head`) ends the run quietly (141), where the stream's EPIPE event would throw out of Node
    .configureOutput({ writeOut: printStdout, outputError: (s, write) => write(s) });
  const named = argv[2];
  const only = commands.find(([name]) => name === named);
  // --version (and -V) before any command needs none of them
  const needed = only ? [only] : named === '--version' || named === '-V' ? [] : commands;
  for (const register of await Promise.all(needed.map(([, load]) => load()))) register(program, exit);
  return program;
}

/** Runs the command line `argv` (node, script, args...) with `commands`; resolves to the exit code. */
export async function runMain(argv: readonly string[], commands: CommandTable): Promise<number> {
  try {
    const exit = new ExitStatus();
    // --no-color goes with any command (and before or after it): taken out before commander sees it
    setNoColor(argv.includes('--no-color'));
    // so does --quiet (-q): no progress bar
    setQuiet(argv.includes('--quiet') || argv.includes('-q'));
    const args = withoutGlobalFlags(argv);
    await (await buildProgram(exit, args, commands)).parseAsync(args);
    return exit.code;
  } catch (e) {
    return reportError(e);
  }
}
