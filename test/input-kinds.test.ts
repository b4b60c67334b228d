import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { INPUT_KINDS } from '../grammar/input-kinds.js';
import { REAL, ROOT, tempDir } from './helpers.js';

/**
 * Files that are not a main stream are named, with what handles them; gzip is read
 * directly. The expected dumps are analyze-migration.py's recorded output of the same
 * recording, uncompressed.
 */
const MIGSTREAM = join(ROOT, 'bin', 'migstream');
const tmp = tempDir('migstream-kinds-');
const run = (args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(MIGSTREAM, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('gzip captures are read directly', () => {
  it('dump of pc-paused.mig.gz prints what the script printed for pc-paused.mig; validate agrees', () => {
    const gz = join(tmp, 'pc-paused.mig.gz');
    writeFileSync(gz, gzipSync(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.mig'))));
    const r = run(['dump', gz]);
    expect(r.err).toBe('');
    expect(r.out).toBe(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.analyze.json'), 'utf8'));
    expect(run(['validate', gz]).out).toBe(`${gz}: valid (0 diagnostics)\n`);
  });

  it('a truncated gzip: exit 1 at the offset where the inflated stream ends, no stack trace', () => {
    const whole = gzipSync(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.mig')));
    const gz = join(tmp, 'cut.mig.gz');
    writeFileSync(gz, whole.subarray(0, whole.length >> 1));
    const r = run(['validate', gz]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/error \[stream\/truncated\]/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe('other kinds of file are named with what handles them', () => {
  for (const k of INPUT_KINDS) {
    it(k.name, () => {
      const f = join(tmp, `kind-${INPUT_KINDS.indexOf(k)}.bin`);
      writeFileSync(f, Buffer.concat([Buffer.from(k.magic), Buffer.alloc(64)]));
      const r = run(['dump', f]);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`migstream: ${f} is ${k.name}: ${k.hint}\n`);
    });
  }

  it('a qcow2 image without snapshots, made by qemu-img, where it is installed', () => {
    const img = join(tmp, 'disk.qcow2');
    const made = spawnSync('qemu-img', ['create', '-f', 'qcow2', img, '1M']);
    if (made.status !== 0) return; // qemu-utils not installed: the magic case above covers it
    expect(run(['validate', img]).err).toBe(
      `migstream: ${img} is a qcow2 image without a snapshot that holds VM state (snapshots: none)\n`,
    );
  });

  it('a return-path capture read as a main stream: the option that reads it', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-switchover-ack-tcp.main-return-path.bin');
    const r = run(['dump', f]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `migstream: ${f} starts like a return-path capture, not a main stream: read it with dump --kind return-path (or roundtrip --kind return-path)\n`,
    );
    expect(run(['dump', '--kind', 'return-path', '--format', 'summary', f]).code).toBe(0);
  });
});

describe('dump of a side channel, without options', () => {
  it('a multifd channel: every packet, as dump --format ir lists them', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-multifd-tcp.multifd0.bin');
    const plain = run(['dump', f]);
    expect(plain.code).toBe(0);
    expect(plain.out).toBe(run(['dump', '--format', 'ir', f]).out);
    expect(plain.out).toContain('"channel": "multifd"');
    // 1 MultiFDInit and the channel's packets (pc-multifd-tcp.multifd0.bin, see its summary)
    const summary = JSON.parse(run(['dump', '--format', 'summary', f]).out) as { packets: number };
    expect(plain.out.split('\n').filter((l) => l.startsWith('{"kind":"multifd_packet"')).length).toBe(summary.packets);
  });

  it('--format desc of a channel: there is none, exit 2 saying so', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-multifd-tcp.multifd0.bin');
    const r = run(['dump', '--format', 'desc', f]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('is a multifd channel, which has no vmdescription');
  });
});
