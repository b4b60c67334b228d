import { spawnSync } from 'node:child_process';
import { readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.js';

// Every command's --help carries examples, and every example works as its comment says: each
// line is run by a shell, from a directory that sees the repository's fixtures/ and bin/, with
// bin/ first on PATH (as after `npm install -g migstream`).
const BIN = join(ROOT, 'bin', 'migstream');
const COMMANDS = [
  'dump',
  'validate',
  'profile',
  'encode',
  'roundtrip',
  'stats',
  'fuzz',
  'gen',
  'model',
  'analyze',
  'diff',
  'libvirt-xml',
  'snapshots',
  'tap',
];

const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
const hasQemu = qemu.status === 0;

function help(command: string): string {
  const r = spawnSync(process.execPath, [BIN, command, '--help'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The lines of the "Examples…:" block: the shell commands, each with the status its comment promises. */
function examples(text: string): { line: string; status: number }[] {
  const block = text.split(/\nExamples?[^:\n]*:\n/)[1] ?? '';
  return block
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((line) => ({ line, status: /#\s*exit 1\b/.test(line) ? 1 : 0 }));
}

describe('every --help shows examples that work', () => {
  it('the commands listed here are all the commands there are', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    const listed = [...r.stdout.matchAll(/^ {2}([a-z-]+)(?= )/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(listed.sort()).toEqual([...COMMANDS].sort());
  });

  for (const command of COMMANDS) {
    it(`${command} --help: every example exits as its comment says, without a stack trace`, () => {
      const list = examples(help(command));
      expect(list.length).toBeGreaterThanOrEqual(2);
      // the examples of one command run in order in one directory (later ones use earlier outputs)
      const dir = tempDir(`migstream-help-${command}-`);
      for (const name of ['fixtures', 'bin']) symlinkSync(join(ROOT, name), join(dir, name));
      for (const { line, status } of list) {
        expect(line).toMatch(/(^|\| )migstream /);
        if (line.includes('qemu-load') && !hasQemu) continue;
        // a live example waits for two QEMUs to migrate through it: test/tap.test.ts runs that with QEMU 7.2
        if (/# live:/.test(line)) continue;
        const r = spawnSync('bash', ['-c', line], {
          cwd: dir,
          encoding: 'utf8',
          maxBuffer: 1 << 26,
          env: { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env['PATH'] ?? ''}`, FORCE_COLOR: '0' },
        });
        expect({ line, status: r.status, stderr: r.stderr }).toMatchObject({ line, status });
        expect(r.stderr).not.toMatch(/internal error|\n\s+at .*\.js:\d+/);
        if (status === 1 && !line.includes('>'))
          expect(r.stdout + r.stderr).toMatch(/error \[[a-z0-9-]+\/[a-z0-9-]+\]|the migration format differs/);
      }
      // what the examples say they write is there
      const written = readdirSync(dir).filter((n) => n !== 'fixtures' && n !== 'bin');
      for (const { line } of list) {
        if (/# live:/.test(line)) continue;
        for (const m of line.matchAll(/(?:-o|--out|--vfio-extract|> )\s*([A-Za-z][\w.-]*)/g)) {
          if (m[1] !== undefined && m[1] !== '-') expect(written, line).toContain(m[1]);
        }
      }
    }, 120_000);
  }
});
