// The entry of the bundled command line (bin/migstream, dist/cli/dispatch.cjs): it picks the
// one bundle a command line needs before anything else is loaded. Start-up is most of a small
// file's run, and what it costs is loading and compiling code: one CommonJS file per command
// (Node's ES module loader alone costs a few milliseconds more) holding that command and nothing
// else. Only meaningful in dist/cli/, where scripts/bundle.ts writes the bundles it names.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

/** Runs the command line `argv` (node, script, args...); resolves to the exit code. */
export function run(argv: readonly string[]): Promise<number> {
  const here = (file: string): URL => new URL(`./${file}`, import.meta.url);
  const bundle = bundleFor(argv, (file) => existsSync(here(file)));
  const file = fileURLToPath(here(`${bundle}.cjs`));
  const loaded = loadBundle(file);
  if (!isBundle(loaded.exports)) throw new Error(`${file} exports no main(): run npm run build`);
  return loaded.exports.main(argv).finally(() => loaded.done());
}
