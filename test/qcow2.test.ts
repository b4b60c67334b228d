import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSource } from '../src/app/open.js';
import { listSnapshots } from '../src/app/snapshots.js';
import { Qcow2Image } from '../src/qcow2/image.js';
import { validateFile } from '../src/app/validate.js';
import { roundtripSource } from '../src/codec/open.js';
import { readAt } from '../src/io/source.js';
import { StreamError } from '../src/model/errors.js';
import { QCOW2_COMPRESSION_TYPE_OFFSET, QCOW2_OFFSET_MASK, Qcow2Incompatible } from '../grammar/qcow2.js';
import { startQemu } from '../bench/qemu.js';
import { hasQemu, ROOT } from './helpers.js';

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
    const l2Offset = Number(bytes.readBigUInt64BE(l1Entry) & QCOW2_OFFSET_MASK);
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

describe('extended L2 entries (QEMU 7.2, qemu-img create -o extended_l2=on)', () => {
  const L2X = join(DIR, 'pc-snapshots-l2x.qcow2');
  const l2xMeta = JSON.parse(readFileSync(join(DIR, 'pc-snapshots-l2x.meta.json'), 'utf8')) as {
    qemu_img_info: { 'format-specific': { data: { 'extended-l2': boolean } } };
  };
  it("the snapshot's VM state, read subcluster by subcluster, is byte for byte what migrate wrote", () => {
    expect(l2xMeta.qemu_img_info['format-specific'].data['extended-l2']).toBe(true);
    const state = vmState(L2X, 'first');
    expect(Buffer.from(state).equals(readFileSync(join(DIR, 'pc-snapshots-l2x.first.mig')))).toBe(true);
    expect(validateFile(L2X, { snapshot: 'first' }).valid).toBe(true);
  });
  it('a subcluster both allocated and reading as zeros is refused at its L2 entry (QEMU: invalid)', () => {
    const bytes = Buffer.from(readFileSync(L2X));
    const s = listSnapshots(L2X).snapshots[0];
    if (!s) throw new Error('no snapshot');
    // 64 KiB clusters, 16-byte entries: 4096 per L2 table, 256 MiB each; the VM state is at L1 entry 1
    const l2 = Number(bytes.readBigUInt64BE(s.l1TableOffset + 8) & QCOW2_OFFSET_MASK);
    const bitmap = bytes.readBigUInt64BE(l2 + 8);
    expect(bitmap & 1n).toBe(1n); // subcluster 0 of the first VM state cluster is allocated
    bytes.writeBigUInt64BE(bitmap | (1n << 32n), l2 + 8);
    const bad = join(tmp, 'l2x-invalid.qcow2');
    writeFileSync(bad, bytes);
    const e = catchStreamError(() => vmState(bad, 'first'));
    expect(e.offset).toBe(l2 + 8);
    expect(e.path.at(-1)).toBe(`L2 table @0x${l2.toString(16)} entry 0`);
  });
});

/**
 * A compressed VM state cluster. QEMU writes VM state uncompressed, but its qcow2 driver reads
 * compressed clusters anywhere (qcow2.txt, "Compressed Clusters Descriptor"). The first VM state
 * cluster of pc-snapshots.qcow2 is compressed (raw deflate for compression type zlib, a zstd frame
 * for zstd, with the header byte and feature bit that name it), written past
 * the end of the file at an offset that is not sector-aligned, and its L2 entry rewritten as a
 * compressed descriptor; QEMU 7.2's loadvm is the judge of the result.
 */
function compressFirstCluster(out: string, corrupt = false, method: 'zlib' | 'zstd' = 'zlib'): void {
  const b = readFileSync(IMAGE);
  const s = listSnapshots(IMAGE).snapshots.find((x) => x.name === 'first');
  if (!s) throw new Error('no snapshot');
  const l2 = Number(b.readBigUInt64BE(s.l1TableOffset + 8) & QCOW2_OFFSET_MASK);
  const data = Number(b.readBigUInt64BE(l2) & QCOW2_OFFSET_MASK);
  const cluster = b.subarray(data, data + 65536);
  const packed = method === 'zlib' ? deflateRawSync(cluster) : zstdFrame(cluster);
  if (method === 'zstd') {
    // compression type zstd: byte 104 of the (112-byte) version 3 header, and its incompatible feature bit
    b[QCOW2_COMPRESSION_TYPE_OFFSET] = 1;
    b.writeBigUInt64BE(b.readBigUInt64BE(72) | Qcow2Incompatible.COMPRESSION_TYPE, 72);
  }
  const at = Math.ceil(b.length / 512) * 512 + 100;
  const image = Buffer.alloc(Math.ceil((at + packed.length) / 512) * 512);
  b.copy(image);
  packed.copy(image, at);
  if (corrupt) image[at + 10] = (image[at + 10] ?? 0) ^ 0xff;
  // x = 62 - (cluster_bits - 8) = 54: the offset below bit 54, the sectors beyond the first above it
  const sectors = Math.ceil(((at % 512) + packed.length) / 512) - 1;
  image.writeBigUInt64BE((1n << 62n) | (BigInt(sectors) << 54n) | BigInt(at), l2);
  writeFileSync(out, image);
}

/** One zstd frame of `data`, made by the zstd command line tool (Debian's zstd package). */
function zstdFrame(data: Uint8Array): Buffer {
  const r = spawnSync('zstd', ['-c', '-q', '-3'], { input: data });
  if (r.status !== 0) throw new Error(`zstd: ${r.stderr.toString()}`);
  return r.stdout;
}
const hasZstd = spawnSync('zstd', ['--version']).status === 0;

/** HMP `loadvm NAME` in a paused QEMU 7.2 of the recording's machine with IMAGE as its disk; the monitor's reply. */
async function loadvm(image: string, name: string): Promise<string> {
  const args = ['-machine', 'pc', '-m', '32M', '-nodefaults', '-display', 'none', '-accel', 'tcg', '-S'];
  // a QMP socket of its own per call: a killed QEMU leaves its socket file behind
  const q = await startQemu(mkdtempSync(join(tmp, 'loadvm-')), 'loadvm', [
    ...args,
    '-drive',
    `file=${image},if=ide,format=qcow2`,
  ]);
  try {
    const r = await q.cmd('human-monitor-command', { 'command-line': `loadvm ${name}` });
    return String(r['return']);
  } finally {
    await q.quit();
  }
}

const METHODS = [
  { method: 'zlib', data: 'raw deflate data', skip: false },
  { method: 'zstd', data: 'zstd frames', skip: !hasZstd },
] as const;

for (const { method, data, skip } of METHODS)
  describe.skipIf(skip)(`a ${method}-compressed VM state cluster (compression type ${method})`, () => {
    it('is decompressed: the VM state is still byte for byte what migrate wrote', () => {
      const image = join(tmp, `${method}.qcow2`);
      compressFirstCluster(image, false, method);
      const qcow2 = new Qcow2Image(image);
      expect(qcow2.compression).toBe(method);
      qcow2.close();
      expect(Buffer.from(vmState(image, 'first')).equals(readFileSync(join(DIR, 'pc-snapshots.first.mig')))).toBe(true);
    });
    it('corrupted compressed data is refused at its L2 entry', () => {
      const image = join(tmp, `${method}-bad.qcow2`);
      compressFirstCluster(image, true, method);
      const e = catchStreamError(() => vmState(image, 'first'));
      expect(e.expected).toBe(`${data} of one 65536-byte cluster`);
      expect(e.path.at(-1)).toMatch(/^L2 table @0x[0-9a-f]+ entry 0$/);
    });
    it.skipIf(!hasQemu)(
      'QEMU 7.2 loads the same image with loadvm, and fails on the corrupted one',
      async () => {
        const good = join(tmp, `${method}-qemu.qcow2`);
        compressFirstCluster(good, false, method);
        expect(await loadvm(good, 'first')).toBe('');
        const bad = join(tmp, `${method}-qemu-bad.qcow2`);
        compressFirstCluster(bad, true, method);
        expect(await loadvm(bad, 'first')).toContain('Error -22 while loading VM state');
      },
      60_000,
    );
  });
