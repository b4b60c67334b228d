// The command line as a few bundled files (dist/cli/): one parse of a few files instead of
// resolving and compiling a hundred modules at every start. Each command stays a chunk of
// its own (main.ts imports them dynamically), so a run loads only what its command needs.
// Packages loaded on demand with createRequire (cli-progress, pako, fzstd) stay outside the bundle.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// chunks are named by content hash: the last build's would otherwise stay beside the new ones (and go into the package)
rmSync('dist/cli', { recursive: true, force: true });

await build({
  // the worker that decode() starts (tap) sits beside the chunks that start it: new URL('./decode-worker.js', import.meta.url)
  entryPoints: { main: 'src/cli/main.ts', 'decode-worker': 'src/app/decode-worker.ts' },
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  // error classes name themselves; kept so that stack traces and `name` read as in the sources
  keepNames: true,
  // bundled CommonJS packages (commander, chalk's helpers) call require() for Node's built-ins
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
