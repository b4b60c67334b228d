// The command line as bundled files (dist/cli/): a run loads and compiles one file holding its
// command and nothing else, instead of resolving a hundred modules. bin/migstream requires
// dispatch.cjs, which picks the file:
//   command-NAME.cjs  one command (src/cli/NAME.ts and what it imports)
//   version.cjs       --version, with no command
//   all.cjs           every command: --help, `help CMD`, a mistyped name
// CommonJS, not ES modules: Node's ES module loader costs a few milliseconds at every start
// (measured on --version: 1.37x bare node as split ES modules, 1.16x as one CommonJS file).
// Each file carries its own copy of the shared code (the codec, commander): what a run of one
// command loads is what counts, not the package's size. The worker threads' files stay ES
// modules beside them, under the names their starters give (decode.ts: `./decode-worker.js`
// for the tap; multifd-data-offload.ts: `./multifd-data-worker.js` for validate's compressed
// multifd channels). Packages loaded on demand with createRequire
// (cli-progress, pako, fzstd) stay outside the bundle. Last, each file is run once to make its
// V8 code cache (src/cli/code-cache.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { COMMAND_NAMES } from '../src/cli/main.js';

// the last build's files would otherwise stay beside the new ones (and go into the package)
rmSync('dist/cli', { recursive: true, force: true });

/**
 * commander loads node:child_process when it is loaded, for subcommands that are executables of
 * their own (migstream has none): with the network modules it brings, 1-2 ms of every start.
 * Its one use, spawn, loads it when called. The build fails if commander's line changes.
 */
const COMMANDER_CHILD_PROCESS = "const childProcess = require('node:child_process');";
const lazyCommanderChildProcess: Plugin = {
  name: 'lazy-commander-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(COMMANDER_CHILD_PROCESS))
        throw new Error(`${args.path}: no "${COMMANDER_CHILD_PROCESS}" to make lazy (commander changed)`);
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
      return { contents: text.replace(COMMANDER_CHILD_PROCESS, lazy), loader: 'js' };
    });
  },
};

const common: BuildOptions = {
  bundle: true,
  plugins: [lazyCommanderChildProcess],
  platform: 'node',
  target: 'node20',
  minify: true,
  // error classes name themselves; kept so that stack traces and `name` read as in the sources
  keepNames: true,
  logLevel: 'warning',
};

/** `libvirt-xml` -> `registerLibvirtXml`: the export each command module names after its command. */
function registerName(command: string): string {
  return 'register' + command.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
}

const cli = resolve('src/cli');
const entry = (name: string, contents: string): [string, string] => [name, contents];
const entries = new Map<string, string>([
  entry('dispatch', `export { run } from ${JSON.stringify(`${cli}/dispatch.ts`)};`),
  entry('all', `export { main } from ${JSON.stringify(`${cli}/main.ts`)};`),
  entry(
    'version',
    `import { runMain } from ${JSON.stringify(`${cli}/program.ts`)};\nexport const main = (argv) => runMain(argv, []);`,
  ),
  ...COMMAND_NAMES.map((name) =>
    entry(
      `command-${name}`,
      `import { runMain } from ${JSON.stringify(`${cli}/program.ts`)};\n` +
        `import { ${registerName(name)} as register } from ${JSON.stringify(`${cli}/${name}.ts`)};\n` +
        `export const main = (argv) => runMain(argv, [[${JSON.stringify(name)}, async () => register]]);`,
    ),
  ),
]);

await Promise.all(
  [...entries].map(([name, contents]) =>
    build({
      ...common,
      stdin: { contents, resolveDir: cli, sourcefile: `bundle-entry-${name}.ts`, loader: 'ts' },
      outfile: `dist/cli/${name}.cjs`,
      format: 'cjs',
      // import.meta.url (createRequire, the worker's URL) as a CommonJS file spells it
      define: { 'import.meta.url': '__migstreamFileUrl' },
      banner: { js: "const __migstreamFileUrl = require('node:url').pathToFileURL(__filename).href;" },
    }),
  ),
);

await build({
  ...common,
  entryPoints: {
    'decode-worker': 'src/app/decode-worker.ts',
    'multifd-data-worker': 'src/loader/multifd-data-worker.ts',
  },
  outdir: 'dist/cli',
  format: 'esm',
  // bundled CommonJS packages call require() for Node's built-ins
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
});

// Each bundle's code cache, from a run that compiles what a user's run would: the commands that
// read a stream read a shipped recording, the others print their help.
const RECORDING = 'fixtures/real/qemu-7.2/pc-paused.mig';
const READS_A_STREAM = new Set(['dump', 'stats', 'validate', 'roundtrip', 'analyze', 'profile']);
const training: [string, string[]][] = [
  ['version', ['--version']],
  ['all', ['--help']],
  ...COMMAND_NAMES.map((name): [string, string[]] => [
    `command-${name}`,
    name === 'analyze' ? [name, '-f', RECORDING] : READS_A_STREAM.has(name) ? [name, RECORDING] : [name, '--help'],
  ]),
];
for (const [bundle, args] of training) {
  const r = spawnSync(process.execPath, ['bin/migstream', ...args], {
    stdio: 'ignore',
    env: { ...process.env, MIGSTREAM_WRITE_CODE_CACHE: '1' },
  });
  if (r.status !== 0)
    throw new Error(`the code-cache run of ${bundle} (migstream ${args.join(' ')}) exited ${r.status}`);
}
