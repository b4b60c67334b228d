/**
 * `migstream analyze` (and the `analyze-migration` bin): QEMU's scripts/analyze-migration.py
 * flags and output, so a script that calls it switches by changing the command name.
 *   -f/--file FILE   the stream (required)
 *   -d/--dump state|desc (default state): the state dump or the vmdescription, as JSON
 *   -m/--memory      with -d state: RAM page contents too
 *   -x/--extract     RAMBlocks, desc.json and state.json into the current directory,
 *                    printing the names of the files as it writes them (what the script prints)
 * Where the script stops (XBZRLE, postcopy commands, 7.2 configuration subsections), this
 * keeps going; a broken stream still ends with one line and exit 1, not a traceback.
 */
import { Command, Option } from 'commander';
import { dumpStream, type DumpRequest } from '../app/dump.js';
import { printWarnings } from './common.js';
import { EXIT_OK, reportError, warnLine, type ExitStatus } from './errors.js';
import { printStdout, TextOut } from './output.js';

interface AnalyzeOptions {
  file: string;
  dump: 'state' | 'desc';
  memory?: boolean;
  extract?: boolean;
}

/** The RAMBlock names of a state document, in the order the script creates their files. */
function ramBlockNames(state: string): string[] {
  const doc = JSON.parse(state) as Record<string, unknown>;
  for (const [key, value] of Object.entries(doc)) {
    if (!/^ram \(\d+\)$/.test(key) || typeof value !== 'object' || value === null) continue;
    const sizes = (value as Record<string, unknown>)['section sizes'];
    if (typeof sizes === 'object' && sizes !== null) return Object.keys(sizes);
  }
  return [];
}

export function addAnalyzeOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-f, --file <file>', 'migration dump to read from')
    .option('-m, --memory', 'dump RAM contents as well')
    .addOption(new Option('-d, --dump <what>', 'what to dump').choices(['state', 'desc']).default('state'))
    .option('-x, --extract', 'extract contents into individual files (in the current directory)')
    .addHelpText(
      'after',
      '\nExamples (as with scripts/analyze-migration.py):\n' +
        [
          'migstream analyze -f fixtures/real/qemu-7.2/pc-paused.mig | head -20     # the state dump',
          'migstream analyze -f fixtures/real/qemu-7.2/pc-paused.mig -d desc > desc.json',
          'migstream analyze -f fixtures/real/qemu-7.2/pc-paused.mig -x             # RAMBlocks, desc.json, state.json here',
        ]
          .map((l) => `  ${l}`)
          .join('\n'),
    );
}

export function runAnalyze(o: AnalyzeOptions, exit: ExitStatus): void {
  const base: Omit<DumpRequest, 'format' | 'ram'> = { kind: 'main', multifd: [] };
  if (o.extract) {
    // the script prints desc.json, each RAMBlock as it opens its file, then state.json
    let state = '';
    const r = dumpStream(o.file, { ...base, format: 'analyze', ram: 'sizes', extract: '.' }, (s) => (state += s));
    printStdout(['desc.json', ...(state ? ramBlockNames(state) : []), 'state.json'].join('\n') + '\n');
    printWarnings(r.warnings);
    exit.set(r.error ? reportError(r.error) : EXIT_OK);
    return;
  }
  const out = new TextOut(undefined);
  let r;
  try {
    r =
      o.dump === 'desc'
        ? dumpStream(o.file, { ...base, format: 'desc', ram: 'sizes' }, out.write)
        : dumpStream(
            o.file,
            { ...base, format: 'analyze', ram: o.memory ? 'hex' : 'sizes' },
            out.write,
            out.writeBytes,
          );
  } finally {
    out.close();
  }
  printWarnings(r.warnings);
  for (const n of r.notes) warnLine(n);
  exit.set(r.error ? reportError(r.error) : EXIT_OK);
}

export function registerAnalyze(program: Command, exit: ExitStatus): void {
  addAnalyzeOptions(
    program
      .command('analyze')
      .description("scripts/analyze-migration.py's flags and output: -f FILE [-d state|desc] [-m] [-x]"),
  ).action((o: AnalyzeOptions) => runAnalyze(o, exit));
}
