// The entry of the bundled command line (bin/migstream, dist/cli/dispatch.cjs): it picks the
// one bundle a command line needs before anything else is loaded. Start-up is most of a small
// file's run, and what it costs is loading and compiling code: one CommonJS file per command
// (Node's ES module loader alone costs a few milliseconds more) holding that command and nothing
// else. Only meaningful in dist/cli/, where scripts/bundle.ts writes the bundles it names.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as V8 from 'node:v8';
import { commandNamed } from './argv.js';
import { loadBundle } from './code-cache.js';

interface Bundle {
  main(argv: readonly string[]): Promise<number>;
}

function isBundle(x: unknown): x is Bundle {
  return typeof x === 'object' && x !== null && 'main' in x && typeof x.main === 'function';
}

/** The bundle for `argv`: `version` (no command), `command-NAME` (one command), or `all` (help, a mistyped name). */
export function bundleFor(argv: readonly string[], exists: (file: string) => boolean): string {
  const named = commandNamed(argv);
  if (named === '--version' || named === '-V') return 'version';
  if (named !== undefined && /^[a-z][a-z-]*$/.test(named) && exists(`command-${named}.cjs`)) return `command-${named}`;
  return 'all';
}

/**
 * Commands that read a stream record by record and keep little of it alive. V8 doubles its young
 * generation whenever many objects survive a scavenge, up to 3 x 16 MiB, and a device-heavy
 * stream's short-lived vmstate trees made it grow: most of `dump`'s 94-105 MiB on a 2.3 MB q35
 * recording (73 MiB without the growth, in the same time; 512 MiB of RAM: the same time too).
 * The save engine keeps more alive and runs 30% slower without it: it keeps V8's default.
 */
const READS_RECORD_BY_RECORD: ReadonlySet<string> = new Set(['dump', 'analyze', 'validate', 'stats', 'roundtrip']);

/** node:v8 only for the commands that change a flag: it loads Node's streams with it (2 ms of --version). */
function setFlagsFromString(flags: string): void {
  (createRequire(import.meta.url)('node:v8') as typeof V8).setFlagsFromString(flags);
}

/**
 * V8's settings for `command`, before its bundle is compiled: V8's code cache records the flags
 * it was made under (the build's run of each bundle goes through here too). Both flags here
 * take effect once the heap exists (the semi-space size itself does not).
 */
export function prepareHeap(command: string | undefined): void {
  if (command !== undefined && READS_RECORD_BY_RECORD.has(command)) setFlagsFromString('--semi-space-growth-factor=1');
  if (command === 'fuzz') {
    // Thousands of runs, each a mutant's records and a fork of the loader: with V8's defaults
    // the young generation grew to 32 MiB and the old one to 40-63 MiB of mostly dead runs
    // (141-180 MiB RSS for 5,000-20,000 runs on pc-paused); with neither growing, 89 MiB, at
    // 12-15% fewer runs a second (measured after the runs' allocations were cut by two thirds).
    setFlagsFromString('--semi-space-growth-factor=1');
    setFlagsFromString('--heap-growing-percent=50');
  }
}

/**
 * bin/migstream's shell line keeps NODE_EXTRA_CA_CERTS from Node (it would load every certificate
 * the file holds before starting: migstream makes no TLS connection) as
 * MIGSTREAM_NODE_EXTRA_CA_CERTS; the processes migstream starts (QEMU, a fuzz target, the
 * pipe-size helper) get it back as it was.
 */
export function restoreExtraCaCerts(env: NodeJS.ProcessEnv): void {
  const value = env['MIGSTREAM_NODE_EXTRA_CA_CERTS'];
  if (value === undefined) return;
  env['NODE_EXTRA_CA_CERTS'] = value;
  delete env['MIGSTREAM_NODE_EXTRA_CA_CERTS'];
}

/** Runs the command line `argv` (node, script, args...); resolves to the exit code. */
export function run(argv: readonly string[]): Promise<number> {
  restoreExtraCaCerts(process.env);
  prepareHeap(commandNamed(argv));
  const here = (file: string): URL => new URL(`./${file}`, import.meta.url);
  const bundle = bundleFor(argv, (file) => existsSync(here(file)));
  const file = fileURLToPath(here(`${bundle}.cjs`));
  const loaded = loadBundle(file);
  if (!isBundle(loaded.exports)) throw new Error(`${file} exports no main(): run npm run build`);
  return loaded.exports.main(argv).finally(() => loaded.done());
}
