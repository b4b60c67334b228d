import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openMainStream } from '../src/codec/open.js';
import type { MainRecord } from '../src/model/records.js';
import { validateMain } from '../src/loader/validate.js';
import { freshMutants, MUTATORS, Prng } from '../src/fuzz/mutators.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import { StreamReader } from '../src/io/reader.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import { hasQemu72, multifdDestination, REAL, ROOT, tempDir } from './helpers.js';
import { destinationOf, qemuLoads, type Destination } from '../scripts/differential.js';

/**
 * The reference loader against the real one: Debian 12's QEMU 7.2 (installed by .ci/run),
 * loading the 7.2 recordings with the destination arguments recorded in their meta.json,
 * then mutated copies of them. QEMU's verdict (migration completed or failed) is the
 * expected value; migstream validate must reach the same one.
 */
const QEMU_LOAD = join(ROOT, 'bin', 'qemu-load');
const tmp = tempDir('migstream-qemu-');

/** The destination a 7.2 recording was loaded into (its meta.json), and QEMU's verdict on a file. */
const destination = (name: string): Destination => destinationOf(join(REAL, 'qemu-7.2', `${name}.mig`));

const CASES = ['pc-paused', 'pc-old-format', 'pc-suppress-vmdesc', 'pc-postcopy-ram', 'pc-compress-7.2'];

describe.skipIf(!hasQemu72)('QEMU 7.2 and migstream validate agree', () => {
  for (const name of CASES) {
    it(`${name}: QEMU loads the recording, migstream finds it valid`, () => {
      const dst = destination(name);
      const file = join(REAL, 'qemu-7.2', `${name}.mig`);
      expect(qemuLoads(file, dst)).toEqual({ loads: true, why: '' });
      const r = validateMain(new BufferSource(new Uint8Array(readFileSync(file))), {
        qemuVersion: '7.2',
        capabilities: dst.capabilities,
        sendConfiguration: !dst.args.includes('migration.send-configuration=off'),
        sectionFooters: !dst.args.includes('migration.send-section-footer=off'),
      });
      expect(r.diagnostics).toEqual([]);
    });
  }

  // Structural mutations only: random byte flips may land in the vmdescription, which QEMU
  // never reads but migstream trusts.
  const structural = MUTATORS.filter((m) => m.name !== 'flip-bytes');
  for (const name of ['pc-paused', 'pc-old-format', 'pc-postcopy-ram', 'pc-compress-7.2']) {
    it(`${name}: 40 mutated copies, the same verdict for each`, () => {
      const dst = destination(name);
      const seed = new Uint8Array(readFileSync(join(REAL, 'qemu-7.2', `${name}.mig`)));
      const records: MainRecord[] = [...openMainStream(new BufferSource(seed), { copyData: true }).records()];
      const rng = new Prng(2026);
      const disagreements: string[] = [];
      let refused = 0;
      for (let i = 0; i < 40; i++) {
        const mutator = structural[rng.below(structural.length)];
        const m = mutator.fn(seed, records, rng, freshMutants);
        if (!m) continue;
        const file = join(tmp, `${name}-${i}.mig`);
        writeFileSync(file, m.bytes);
        const q = qemuLoads(file, dst);
        const ours = validateMain(new BufferSource(m.bytes), {
          qemuVersion: '7.2',
          capabilities: dst.capabilities,
          sendConfiguration: name !== 'pc-old-format',
          sectionFooters: name !== 'pc-old-format',
        });
        if (!q.loads) refused++;
        if (q.loads !== ours.valid)
          disagreements.push(
            `${mutator.name}: ${m.what}: QEMU ${q.loads ? 'loads it' : `refuses it (${q.why})`}, migstream ${ours.valid ? 'finds it valid' : `finds ${ours.diagnostics[0]?.rule}`}`,
          );
      }
      expect(disagreements).toEqual([]);
      expect(refused).toBeGreaterThan(10); // the mutations do break streams: it is not agreement on untouched ones
    }, 120_000);
  }

  // Multifd over TCP on 127.0.0.1, as the recordings were made: main first, then the channels.
  for (const [c, stream, dest] of [
    ['pc-multifd-tcp', 'none', 'none'],
    ['pc-multifd-zstd-tcp', 'zstd', 'zstd'],
    ['pc-multifd-zstd-tcp', 'zstd', 'none'],
  ] as const) {
    it(`${c} (${stream}) into a destination with multifd-compression=${dest}: the same verdict`, () => {
      const base = join(REAL, 'qemu-7.2', c);
      const q = spawnSync(
        process.execPath,
        [
          QEMU_LOAD,
          '--timeout',
          '5000',
          '--parameter',
          `multifd-compression=${dest}`,
          '--multifd',
          `${base}.multifd0.bin`,
          '--multifd',
          `${base}.multifd1.bin`,
          `${base}.mig`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      const ours = validateMain(
        new FileSource(`${base}.mig`),
        { qemuVersion: '7.2', capabilities: ['multifd'], multifdCompression: dest },
        {},
        {
          multifd: [0, 1].map((i) => ({ name: `ch${i}`, source: new FileSource(`${base}.multifd${i}.bin`) })),
        },
      );
      expect(q.status === 0).toBe(stream === dest);
      expect(ours.valid).toBe(stream === dest);
    }, 60_000);
  }

  it('pc-multifd-tcp: 20 channels with one changed byte each (MultiFDInit, packet fields, RAMBlock name, offsets), the same verdict', () => {
    const base = join(REAL, 'qemu-7.2', 'pc-multifd-tcp');
    const chans = [0, 1].map((i) => new Uint8Array(readFileSync(`${base}.multifd${i}.bin`)));
    const packets = chans.map((c) =>
      [...decodeMultifdChannel(new StreamReader(new BufferSource(c)))]
        .filter((r) => r.kind === 'multifd_packet')
        .map((r) => r.offset),
    );
    const rng = new Prng(3);
    const disagreements: string[] = [];
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      const ci = rng.below(2);
      const b = chans[ci].slice();
      const p = packets[ci][rng.below(packets[ci].length)];
      // (a refused load waits out the 5 s timeout: QEMU's destination hangs on a broken channel)
      // byte ranges of §8.2 and §8.4: init (0-63), packet header fields (+0-63), ramblock (+64-319), offsets (+320-1343)
      const [from, span] = rng.pick([
        [0, 64],
        [p, 64],
        [p + 64, 256],
        [p + 320, 1024],
      ] as const);
      const at = from + rng.below(span);
      b[at] = rng.below(256);
      const files = chans.map((c, j) => {
        const f = join(tmp, `mfd${j}.bin`);
        writeFileSync(f, j === ci ? b : c);
        return f;
      });
      const q = spawnSync(
        process.execPath,
        [QEMU_LOAD, '--timeout', '5000', '--multifd', files[0], '--multifd', files[1], `${base}.mig`],
        { encoding: 'utf8', timeout: 30_000 },
      );
      const ours = validateMain(
        new FileSource(`${base}.mig`),
        { qemuVersion: '7.2', capabilities: ['multifd'] },
        {},
        {
          multifd: files.map((f) => ({ name: f, source: new FileSource(f) })),
        },
      );
      if (q.status !== 0) refused++;
      if ((q.status === 0) !== ours.valid)
        disagreements.push(
          `channel ${ci} byte ${at}: QEMU ${q.status === 0 ? 'loads it' : `refuses it (${q.stderr.trim()})`}, migstream ${ours.valid ? 'finds it valid' : ours.diagnostics[0]?.rule}`,
        );
    }
    expect(disagreements).toEqual([]);
    expect(refused).toBeGreaterThan(0);
  }, 180_000);
});

/**
 * The RAM migstream extracts is the RAM QEMU loads: QEMU 7.2 loads the recording, then writes
 * its guest memory (QMP pmemsave); pc.ram from `dump --ram extract` must hold the same bytes.
 * Below 1 MiB only 0..0xa0000 is compared: 0xa0000..0xfffff is VGA and the PAM-mapped BIOS
 * shadow, which need not be pc.ram.
 */
describe.skipIf(!hasQemu72)('QEMU 7.2 guest memory equals migstream --ram extract', () => {
  for (const name of ['pc-paused', 'pc-compress-7.2', 'pc-dirty-iterations']) {
    it(name, () => {
      const dst = destination(name);
      const file = join(REAL, 'qemu-7.2', `${name}.mig`);
      const mem = join(tmp, `${name}.pmem`);
      const dir = join(tmp, `${name}.extract`);
      const x = spawnSync(
        process.execPath,
        [join(ROOT, 'bin', 'migstream'), 'dump', file, '--ram', `extract:${dir}`, '-o', '/dev/null'],
        { encoding: 'utf8' },
      );
      expect(x.status, x.stderr).toBe(0);
      const size = statSync(join(dir, 'pc.ram')).size; // the RAMBlock's used_length: the guest's -m
      const r = spawnSync(
        process.execPath,
        [
          QEMU_LOAD,
          ...dst.capabilities.flatMap((c) => ['--capability', c]),
          '--pmemsave',
          `0:${size}:${mem}`,
          '--',
          // -S: a destination whose source ran would run the guest once loaded, before pmemsave
          ...dst.args,
          '-S',
          file,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const ram = readFileSync(join(dir, 'pc.ram'));
      const guest = readFileSync(mem);
      expect(ram.length).toBe(size);
      expect(Buffer.compare(ram.subarray(0, 0xa0000), guest.subarray(0, 0xa0000))).toBe(0);
      expect(Buffer.compare(ram.subarray(0x100000), guest.subarray(0x100000, size))).toBe(0);
    });
  }
});

/** QEMU's arguments of a recording's destination (its meta.json dst_argv), less -incoming and -qmp, which qemu-load adds. */
function recordedDestination(meta: string): string[] {
  const argv = (JSON.parse(readFileSync(meta, 'utf8')) as { dst_argv: string[] }).dst_argv.slice(1);
  return argv.filter(
    (a, i) => !['-incoming', '-qmp'].includes(a) && !['-incoming', '-qmp'].includes(argv[i - 1] ?? ''),
  );
}

/**
 * `--ram extract` of the multifd set at BASE (`BASE.mig`, `BASE.multifd0.bin`, `BASE.multifd1.bin`),
 * and the guest memory QEMU 7.2 has after loading the same files into a destination started with
 * `qemu-load` options OPTIONS and MACHINE's arguments (-S added: a destination without it would
 * run the guest, and change its memory, as soon as the load completes, before pmemsave).
 */
function extractAndLoad(base: string, name: string, options: string[], machine: string[]) {
  const channels = [0, 1].flatMap((i) => ['--multifd', `${base}.multifd${i}.bin`]);
  const dir = join(tmp, `${name}.extract`);
  const x = spawnSync(
    process.execPath,
    [join(ROOT, 'bin', 'migstream'), 'dump', `${base}.mig`, ...channels, '--ram', `extract:${dir}`, '-o', '/dev/null'],
    { encoding: 'utf8' },
  );
  expect(x.status, x.stderr).toBe(0);
  // every compressed packet was read: no note that pages were left out
  expect(x.stderr).not.toContain('not extracted');
  const size = statSync(join(dir, 'pc.ram')).size;
  const mem = join(tmp, `${name}.pmem`);
  const r = spawnSync(
    process.execPath,
    [QEMU_LOAD, ...options, ...channels, '--pmemsave', `0:${size}:${mem}`, '--', ...machine, '-S', `${base}.mig`],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  return { ram: readFileSync(join(dir, 'pc.ram')), guest: readFileSync(mem), size };
}

/** Equal outside the BIOS shadow at 0xa0000-0xfffff, as above. */
function expectSameMemory(ram: Buffer, guest: Buffer, size: number): void {
  expect(Buffer.compare(ram.subarray(0, 0xa0000), guest.subarray(0, 0xa0000))).toBe(0);
  expect(Buffer.compare(ram.subarray(0x100000), guest.subarray(0x100000, size))).toBe(0);
}

/**
 * A multifd migration with multifd-compression zstd (recorded by QEMU 7.2): the pages
 * `--ram extract` decompresses from the two channels' zstd streams are the guest memory QEMU
 * 7.2 has after loading the same three files (the BIOS shadow at 0xa0000-0xfffff left out, as
 * above).
 */
describe.skipIf(!hasQemu72)('QEMU 7.2 guest memory equals --ram extract of zstd multifd channels', () => {
  it('pc-multifd-zstd-tcp', () => {
    const base = join(REAL, 'qemu-7.2', 'pc-multifd-zstd-tcp');
    // the recording's own destination (the source was running)
    const { ram, guest, size } = extractAndLoad(
      base,
      'zstd',
      multifdDestination('zstd'),
      recordedDestination(`${base}.meta.json`),
    );
    expectSameMemory(ram, guest, size);
  });
});

/**
 * The same with multifd-compression zlib (fixtures/recorded-7.2/pc-multifd-zlib-tap, a running
 * guest's migration through `migstream tap --save`): the pages `--ram extract` inflates from the
 * two channels' zlib streams are the guest memory QEMU 7.2 has after loading the three files.
 */
describe.skipIf(!hasQemu72)('QEMU 7.2 guest memory equals --ram extract of zlib multifd channels', () => {
  it('pc-multifd-zlib-tap', () => {
    const base = join(ROOT, 'fixtures', 'recorded-7.2', 'pc-multifd-zlib-tap');
    const meta = JSON.parse(readFileSync(`${base}.meta.json`, 'utf8')) as { argv: { both: string[] } };
    const { ram, guest, size } = extractAndLoad(base, 'zlib', multifdDestination('zlib'), meta.argv.both.slice(1));
    // the guest ran before it was migrated: pages that are not zero, sent over multifd (QEMU 7.2's precopy
    // sends a zero page on the main channel, any other page over multifd)
    let written = 0;
    for (let at = 0; at < size; at += 4096) if (ram.subarray(at, at + 4096).some((b) => b !== 0)) written++;
    expect(written).toBeGreaterThan(10);
    expectSameMemory(ram, guest, size);
  });
});
