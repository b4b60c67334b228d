import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleFor } from '../src/cli/dispatch.js';
import { ROOT, tempDir } from './helpers.js';

const CLI = join(ROOT, 'dist', 'cli');
const CODE_CACHE = join(ROOT, 'dist', 'src', 'cli', 'code-cache.js');
const DISPATCH = join(ROOT, 'dist', 'src', 'cli', 'dispatch.js');
const BIN = join(ROOT, 'bin', 'migstream');
const SMALL = join(ROOT, 'fixtures', 'vfio', 'multifd-load-ready-10.1.mig');

/** loadBundle of each file in a fresh `node` (the one bin/migstream runs in: no test runner's flags), as JSON. */
function loadInNode(files: string[]): { file: string; usedCache: boolean; main: string }[] {
  // one bundle per process: each with V8's settings for its command, as bin/migstream sets them
  if (files.length > 1) return files.flatMap((f) => loadInNode([f]));
  const command = /command-([a-z-]+)\.cjs$/.exec(files[0] ?? '')?.[1];
  const script =
    `import { loadBundle } from ${JSON.stringify(CODE_CACHE)};\n` +
    `import { prepareHeap } from ${JSON.stringify(DISPATCH)};\n` +
    `prepareHeap(${JSON.stringify(command)});\n` +
    `const out = ${JSON.stringify(files)}.map((file) => { const b = loadBundle(file); ` +
    `return { file, usedCache: b.usedCache, main: typeof b.exports.main }; });\n` +
    `process.stdout.write(JSON.stringify(out));\n`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { file: string; usedCache: boolean; main: string }[];
}

describe('the bundled command line (dist/cli/, scripts/bundle.ts)', () => {
  it('dispatch picks the one bundle a command line needs, global flags anywhere', () => {
    const known = (file: string) => ['command-stats.cjs', 'command-libvirt-xml.cjs'].includes(file);
    const pick = (...args: string[]) => bundleFor(['node', 'migstream', ...args], known);
    expect(pick('stats', 'x.mig')).toBe('command-stats');
    expect(pick('--no-color', '-q', 'stats', 'x.mig')).toBe('command-stats');
    expect(pick('libvirt-xml', 'x.img')).toBe('command-libvirt-xml');
    expect(pick('--version')).toBe('version');
    expect(pick('--quiet', '-V')).toBe('version');
    // what no one command answers: commander lists or suggests them all
    expect(pick()).toBe('all');
    expect(pick('--help')).toBe('all');
    expect(pick('help', 'stats')).toBe('all');
    expect(pick('statz', 'x.mig')).toBe('all');
    expect(pick('../../etc/passwd')).toBe('all');
  });

  it('every bundle has a code cache that V8 takes, and exports main', () => {
    const bundles = readdirSync(CLI).filter((f) => f.endsWith('.cjs') && f !== 'dispatch.cjs');
    expect(bundles).toEqual(expect.arrayContaining(['all.cjs', 'version.cjs', 'command-dump.cjs', 'command-tap.cjs']));
    for (const b of loadInNode(bundles.map((f) => join(CLI, f))))
      expect(b, b.file).toMatchObject({ usedCache: true, main: 'function' });
  });

  it('a bundle changed after its cache was made is compiled without it, and runs', () => {
    const dir = tempDir('migstream-bundle-');
    const file = join(dir, 'version.cjs');
    copyFileSync(join(CLI, 'version.cjs'), file);
    copyFileSync(join(CLI, 'version.cjs.v8cache'), `${file}.v8cache`);
    const now = Date.now() / 1000;
    utimesSync(`${file}.v8cache`, now - 60, now - 60);
    utimesSync(file, now - 120, now - 120);
    expect(loadInNode([file])).toEqual([{ file, usedCache: true, main: 'function' }]);
    utimesSync(file, now, now);
    expect(loadInNode([file])).toEqual([{ file, usedCache: false, main: 'function' }]);
  });

  it('a command starts without node:child_process (commander and the pipe-size helper load it when they spawn)', () => {
    // what Node loaded by the time the process exits, for a command that spawns nothing
    const preload = join(tempDir('migstream-modules-'), 'modules.cjs');
    writeFileSync(preload, "process.on('exit', () => process._rawDebug(JSON.stringify(process.moduleLoadList)));\n");
    const stats = spawnSync(process.execPath, ['-r', preload, BIN, 'stats', SMALL], { encoding: 'utf8' });
    expect(stats.status, stats.stderr).toBe(0);
    const loaded = JSON.parse(stats.stderr.trim().split('\n').pop() ?? '[]') as string[];
    expect(loaded).toContain('NativeModule fs');
    expect(loaded).not.toContain('NativeModule child_process');
    // commander, loaded with its spawn made lazy, still parses and prints help
    const help = spawnSync(process.execPath, [BIN, 'stats', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: migstream stats');
  });
});
