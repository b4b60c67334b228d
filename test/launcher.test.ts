import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REAL, ROOT, tempDir } from './helpers.js';

/**
 * bin/migstream and bin/analyze-migration are shell scripts and CommonJS at once: run as
 * commands, their shell line keeps NODE_EXTRA_CA_CERTS from Node (which would load every
 * certificate it names before running a line of migstream) and migstream gives it back to the
 * processes it starts. Node's own warning for a certificate file it cannot load shows whether
 * Node looked at the variable: `node bin/migstream` (which skips the shell line) prints it.
 */
const MIGSTREAM = join(ROOT, 'bin', 'migstream');
const ANALYZE = join(ROOT, 'bin', 'analyze-migration');
const QEMU_LOAD = join(ROOT, 'bin', 'qemu-load');
const QEMU_SAVE = join(ROOT, 'bin', 'qemu-save');
const PAUSED = join(REAL, 'qemu-7.2', 'pc-paused.mig');
const tmp = tempDir('migstream-launcher-');
const NODE_WARNING = 'Ignoring extra certs from';

function run(
  cmd: string,
  args: string[],
  extraCaCerts: string | undefined,
): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  if (extraCaCerts !== undefined) env['NODE_EXTRA_CA_CERTS'] = extraCaCerts;
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the launchers start Node without NODE_EXTRA_CA_CERTS', () => {
  const missing = join(tmp, 'no-such-ca.pem');

  it('node itself warns about the missing file (the control)', () => {
    const r = run(process.execPath, [MIGSTREAM, '--version'], missing);
    expect(r.code).toBe(0);
    expect(r.err).toContain(NODE_WARNING);
  });

  it('bin/migstream run as a command: no warning, the same output', () => {
    const r = run(MIGSTREAM, ['--version'], missing);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.out).toBe(`${pkg.version}\n`);
  });

  it('bin/analyze-migration run as a command: no warning, the script output QEMU recorded', () => {
    const r = run(ANALYZE, ['-f', PAUSED], missing);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(readFileSync(PAUSED.replace(/\.mig$/, '.analyze.json'), 'utf8'));
  });

  it('arguments with spaces and quotes reach the command as given', () => {
    const odd = join(tmp, `a file "named" it's odd.mig`);
    copyFileSync(PAUSED, odd);
    const r = run(MIGSTREAM, ['validate', odd], undefined);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${odd}: valid (0 diagnostics)\n`);
  });
});

describe('the processes migstream starts see NODE_EXTRA_CA_CERTS as the user set it', () => {
  // a fuzz target is a shell command migstream starts for each input: this one writes the
  // variable as it finds it (or "unset") and accepts the input
  const seen = (value: string | undefined): string => {
    const out = join(tmp, `env-${value === undefined ? 'unset' : value.length}`);
    const target = `cmd:printf %s "\${NODE_EXTRA_CA_CERTS-unset}" > '${out}'; exit 0`;
    const r = run(MIGSTREAM, ['fuzz', PAUSED, '--runs', '1', '--target', target], value);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    return readFileSync(out, 'utf8');
  };

  it('set', () => expect(seen(join(tmp, 'ca bundle.pem'))).toBe(join(tmp, 'ca bundle.pem')));
  it('set and empty', () => expect(seen('')).toBe(''));
  it('not set', () => expect(seen(undefined)).toBe('unset'));
});

describe('bin/qemu-load and bin/qemu-save: the same shell line, and QEMU gets the variable back', () => {
  // a stand-in for qemu-system-x86_64 that writes the variable as it finds it and fails at once
  const fakeQemu = (out: string): string => {
    const f = join(tmp, `fake-qemu-${out.length}`);
    writeFileSync(f, `#!/bin/sh\nprintf %s "\${NODE_EXTRA_CA_CERTS-unset}" > '${out}'\nexit 1\n`);
    chmodSync(f, 0o755);
    return f;
  };

  for (const [name, bin, args] of [
    ['qemu-load', QEMU_LOAD, [PAUSED]],
    ['qemu-save', QEMU_SAVE, [join(tmp, 'saved.mig')]],
  ] as const) {
    it(`${name}: no warning from Node; its QEMU sees NODE_EXTRA_CA_CERTS as set`, () => {
      const out = join(tmp, `${name}-env`);
      const ca = join(tmp, 'no-such-ca.pem');
      const r = run(bin, ['--qemu', fakeQemu(out), ...args], ca);
      expect(r.code).toBe(1);
      expect(r.err).not.toContain(NODE_WARNING);
      expect(readFileSync(out, 'utf8')).toBe(ca);
    });
  }
});
