import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSource } from '../src/app/open.js';
import { listSnapshots } from '../src/app/snapshots.js';
import { validateFile } from '../src/app/validate.js';
import { roundtripSource } from '../src/codec/open.js';
import { readAt } from '../src/io/source.js';
import { StreamError } from '../src/model/errors.js';
import { ROOT } from './helpers.js';

/**
 * qcow2 internal snapshots, recorded with QEMU 7.2 by fixtures/recorded-7.2/record-state-files.py:
 * `savevm first` of a paused VM, a `migrate` of the same paused VM right after
 * (pc-snapshots.first.mig), then `savevm second` after it ran; `qemu-img snapshot -l` of the
 * image is in pc-snapshots.meta.json.
 */
const DIR = join(ROOT, 'fixtures', 'recorded-7.2');
const IMAGE = join(DIR, 'pc-snapshots.qcow2');
const meta = JSON.parse(readFileSync(join(DIR, 'pc-snapshots.meta.json'), 'utf8')) as {
  qemu_img_snapshot_list: string;
};
const BIN = join(ROOT, 'bin', 'migstream');
const tmp = mkdtempSync(join(tmpdir(), 'migstream-qcow2-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function vmState(image: string, snapshot?: string): Uint8Array {
  const src = openSource(image, snapshot);
  const out = new Uint8Array(src.size ?? 0);
  expect(readAt(src, out, out.length, 0)).toBe(out.length);
  src.close();
  return out;
}

describe('qcow2 internal snapshots (QEMU 7.2 savevm)', () => {
  it('lists the snapshots qemu-img snapshot -l listed: ids, names, VM state sizes, guest clocks', () => {
    // "1         first             378 KiB 2026-12-05 00:59:27 00:00:00.000"
    const listed = meta.qemu_img_snapshot_list
      .split('\n')
      .slice(2)
      .filter((l) => l.trim())
      .map((l) => l.trim().split(/\s+/));
    const list = listSnapshots(IMAGE);
    expect(list.snapshots.map((s) => [s.id, s.name])).toEqual(listed.map((l) => [l[0], l[1]]));
    list.snapshots.forEach((s, i) => {
      // qemu-img prints the size in KiB with one decimal at most, rounded
      // qemu-img prints three significant digits (size_to_str's %0.3g)
      expect(Number((s.vmStateSize / 1024).toPrecision(3))).toBe(Number(listed[i]?.[2]));
      const [h, m, sec] = (listed[i]?.[6] ?? '').split(':').map(Number);
      expect(Number(s.vmClockNsec / 1_000_000n)).toBe(
        Math.round(((h ?? 0) * 3600 + (m ?? 0) * 60 + (sec ?? 0)) * 1000),
      );
    });
    expect(list.version).toBe(3);
    expect(list.diskSize).toBe(16 << 20);
  });

  it("gives the paused VM's snapshot byte for byte as migrate wrote the same VM state", () => {
    const first = vmState(IMAGE, 'first');
    expect(Buffer.from(first).equals(readFileSync(join(DIR, 'pc-snapshots.first.mig')))).toBe(true);
    // by id as well as by name
    expect(Buffer.from(vmState(IMAGE, '1')).equals(Buffer.from(first))).toBe(true);
  });

  it('reads the newest snapshot by default; each one validates and round-trips byte for byte', () => {
    const newest = vmState(IMAGE);
    expect(Buffer.from(newest).equals(Buffer.from(vmState(IMAGE, 'second')))).toBe(true);
    for (const snapshot of ['first', 'second']) {
      const v = validateFile(IMAGE, { snapshot });
      expect(v.diagnostics).toEqual([]);
      expect(v.valid).toBe(true);
      const r = roundtripSource(openSource(IMAGE, snapshot), openSource(IMAGE, snapshot));
      expect(r.error).toBeUndefined();
      expect(r.identical).toBe(true);
    }
  });

  it('names the table entry that points outside the image: the L1 entry of an L2 table, the L2 entry of a cluster', () => {
    const bytes = readFileSync(IMAGE);
    const s = listSnapshots(IMAGE).snapshots[0];
    if (!s) throw new Error('no snapshot');
    // the VM state starts at the first L2 span past the 16 MiB disk: L1 entry 1 (64 KiB clusters: 512 MiB per L2 table)
    const l1Entry = s.l1TableOffset + 8;
    const l2Offset = Number(bytes.readBigUInt64BE(l1Entry) & 0x00fffffffffffe00n);
    expect(l2Offset).toBeGreaterThan(0);

    const badL1 = join(tmp, 'bad-l1.qcow2');
    copyFileSync(IMAGE, badL1);
    const b1 = Buffer.from(bytes);
    b1.writeBigUInt64BE((1n << 63n) | 0x7fff0000n, l1Entry);
    writeFileSync(badL1, b1);
    const e1 = catchStreamError(() => vmState(badL1, 'first'));
    expect(e1.offset).toBe(l1Entry);
    expect(e1.path).toEqual([badL1, 'snapshot 1 "first"', 'VM state byte 0x0', 'L1 entry 1']);
    expect(e1.expected).toBe(`an L2 table inside the image (0x${bytes.length.toString(16)} bytes), cluster-aligned`);
    expect(e1.found).toBe('L2 table offset 0x7fff0000');

    const badL2 = join(tmp, 'bad-l2.qcow2');
    const b2 = Buffer.from(bytes);
    b2.writeBigUInt64BE((1n << 63n) | 0x1200n, l2Offset);
    writeFileSync(badL2, b2);
    const e2 = catchStreamError(() => vmState(badL2, 'first'));
    expect(e2.offset).toBe(l2Offset);
    expect(e2.path.at(-1)).toBe(`L2 table @0x${l2Offset.toString(16)} entry 0`);
    expect(e2.found).toBe('cluster offset 0x1200');

    // the command line: exit 1 with the message, no stack
    const r = spawnSync(process.execPath, [BIN, 'validate', '--snapshot', 'first', badL2], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr + r.stdout).toContain(
      `L2 table @0x${l2Offset.toString(16)} entry 0: expected a data cluster inside the image`,
    );
    expect(r.stderr).not.toContain('    at ');
  });

  it('from the command line: snapshots, --snapshot by name, and --snapshot on a file that is no image', () => {
    const list = spawnSync(process.execPath, [BIN, 'snapshots', IMAGE], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    expect(list.stdout.split('\n')[1]).toMatch(/^1 {3}first {3}387381 {10}2026-12-05T\S+ {2}00:00:00\.000$/);
    const ok = spawnSync(process.execPath, [BIN, 'roundtrip', '--snapshot', 'second', IMAGE], { encoding: 'utf8' });
    expect(ok.stdout).toBe(`${IMAGE}: identical (646090 bytes, ${ok.stdout.match(/(\d+) records/)?.[1]} records)\n`);
    const notImage = join(DIR, 'pc-snapshots.first.mig');
    const bad = spawnSync(process.execPath, [BIN, 'validate', '--snapshot', 'first', notImage], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(`migstream: --snapshot first: ${notImage} is not a qcow2 image\n`);
  });
});

function catchStreamError(f: () => unknown): StreamError {
  try {
    f();
  } catch (e) {
    if (e instanceof StreamError) return e;
    throw e;
  }
  throw new Error('no StreamError');
}

describe('a qcow2 snapshot entry that lies about its VM state size', () => {
  it('is refused at the entry, before any of it is read', () => {
    const bytes = Buffer.from(readFileSync(IMAGE));
    // the snapshot table: header bytes 64-71 (snapshots_offset); vm_state_size is byte 32 of an entry, and the
    // 64-bit vm_state_size_large of the extra data (byte 40) wins over it
    const table = Number(bytes.readBigUInt64BE(64));
    bytes.writeBigUInt64BE(1n << 40n, table + 40);
    const lying = join(tmp, 'lying-size.qcow2');
    writeFileSync(lying, bytes);
    const e = catchStreamError(() => listSnapshots(lying));
    expect(e.code).toBe('limit');
    expect(e.offset).toBe(table + 32);
    expect(e.found).toBe(String(2 ** 40));
  });
});
