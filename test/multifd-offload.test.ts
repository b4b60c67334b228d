/**
 * Compressed multifd channels decompressed in worker threads (src/loader/multifd-data-offload.ts)
 * give the verdict the one-thread check gives: the same diagnostics in the same order, on QEMU's
 * recorded zstd and zlib sets and on mutants of them (bytes of packet data flipped, channels cut
 * short in a packet's data, packet headers' compression flags changed), with and without the
 * destination's multifd-compression given.
 *
 * The workers run compiled code (a worker thread cannot load TypeScript), so the modules under
 * test are the build's, dist/src (the test command builds first), with its own FileSource: the
 * offload takes only channels that are files.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REAL, ROOT, tempDir } from './helpers.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource } from '../src/io/source.js';
import type { MultifdRecord } from '../src/model/multifd-records.js';
import type * as ValidateModule from '../src/loader/validate.js';
import type * as SourceModule from '../src/io/source.js';
import type * as OffloadModule from '../src/loader/multifd-data-offload.js';
import type { LoadOptions } from '../src/loader/load.js';
import type { Diagnostic } from '../src/model/diagnostic.js';

const BIN = join(ROOT, 'bin', 'migstream');
let dist: {
  validateMain: typeof ValidateModule.validateMain;
  FileSource: typeof SourceModule.FileSource;
  offload: typeof OffloadModule;
};

beforeAll(async () => {
  const validate = (await import(join(ROOT, 'dist', 'src', 'loader', 'validate.js'))) as typeof ValidateModule;
  const source = (await import(join(ROOT, 'dist', 'src', 'io', 'source.js'))) as typeof SourceModule;
  const offload = (await import(
    join(ROOT, 'dist', 'src', 'loader', 'multifd-data-offload.js')
  )) as typeof OffloadModule;
  dist = { validateMain: validate.validateMain, FileSource: source.FileSource, offload };
});

interface RecordedSet {
  name: string;
  compression: 'zstd' | 'zlib';
  /** the set's files without .mig / .multifdN.bin */
  base: string;
}

// every compressed multifd set QEMU recorded here: 7.2 and 11.1 zstd, 7.2 zlib (through the tap)
const SETS: RecordedSet[] = [
  { name: '7.2 zstd', compression: 'zstd', base: join(REAL, 'qemu-7.2', 'pc-multifd-zstd-tcp') },
  { name: '11.1 zstd', compression: 'zstd', base: join(REAL, 'qemu-11.1', 'pc-multifd-zstd-tcp') },
  { name: '7.2 zlib', compression: 'zlib', base: join(ROOT, 'fixtures', 'recorded-7.2', 'pc-multifd-zlib-tap') },
];

const read = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

function channelRecords(b: Uint8Array): MultifdRecord[] {
  const out: MultifdRecord[] = [];
  try {
    for (const r of decodeMultifdChannel(new StreamReader(new BufferSource(b)), 4096)) out.push(r);
  } catch {
    // a cut channel: the records before the cut
  }
  return out;
}

/** Where each packet with normal pages starts, and where its data starts. */
function compressedPackets(b: Uint8Array): { header: number; data: number; length: number }[] {
  const recs = channelRecords(b);
  const out: { header: number; data: number; length: number }[] = [];
  recs.forEach((r, i) => {
    if (r.kind !== 'multifd_packet' || r.fields.normalPages === 0) return;
    const payload = recs[i + 1];
    if (payload?.kind === 'multifd_payload')
      out.push({ header: r.offset, data: payload.offset, length: payload.length });
  });
  return out;
}

interface Mutant {
  what: string;
  channels: Uint8Array[];
}

/** Byte flips in packet data, cuts inside packet data, and a packet's compression flags changed, on each channel. */
function mutants(channels: Uint8Array[]): Mutant[] {
  const out: Mutant[] = [];
  channels.forEach((ch, c) => {
    const replace = (what: string, bytes: Uint8Array): void =>
      void out.push({ what: `channel ${c}: ${what}`, channels: channels.map((x, i) => (i === c ? bytes : x)) });
    const packets = compressedPackets(ch);
    for (const [k, p] of packets.slice(0, 3).entries()) {
      for (const at of [p.data, p.data + (p.length >> 1), p.data + p.length - 1]) {
        const flipped = ch.slice();
        flipped[at] = (flipped[at] ?? 0) ^ 0xff;
        replace(`packet ${k}: byte ${at} of its data flipped`, flipped);
      }
      replace(`cut in packet ${k}'s data`, ch.slice(0, p.data + (p.length >> 1)));
      // MultiFDPacket_t.flags is the be32 after magic and version: its compression bits
      const flags = ch.slice();
      flags[p.header + 11] = (flags[p.header + 11] ?? 0) ^ 0x0e;
      replace(`packet ${k}: compression flags changed`, flags);
    }
  });
  return out;
}

function validate(dir: string, main: Uint8Array, channels: Uint8Array[], load: LoadOptions, threads: number) {
  const mainPath = join(dir, 'main.mig');
  writeFileSync(mainPath, main);
  const paths = channels.map((b, i) => {
    const p = join(dir, `main.multifd${i}.bin`);
    writeFileSync(p, b);
    return p;
  });
  const sources = paths.map((p) => new dist.FileSource(p));
  const mainSource = new dist.FileSource(mainPath);
  try {
    return dist.validateMain(
      mainSource,
      load,
      {},
      { multifd: paths.map((p, i) => ({ name: `channel${i}`, source: sources[i] })), threads },
    );
  } finally {
    mainSource.close();
    for (const s of sources) s.close();
  }
}

const dataRule = (d: Diagnostic): boolean => d.rule === 'multifd/zstd-data' || d.rule === 'multifd/zlib-data';

describe('compressed multifd channels decompressed in worker threads', () => {
  for (const set of SETS) {
    it(`${set.name}: the recording and each mutant get the same diagnostics, in the same order, from 2 worker threads as from one thread`, () => {
      const dir = tempDir('migstream-offload-', 'test');
      const main = read(`${set.base}.mig`);
      const channels = [0, 1].map((i) => read(`${set.base}.multifd${i}.bin`));
      const loads: LoadOptions[] = [
        { capabilities: ['multifd'], multifdCompression: set.compression },
        // without the destination's method the first packet with pages sets it (and a warning says so)
        { capabilities: ['multifd'] },
      ];
      let dataFailures = 0;
      let compared = 0;
      for (const load of loads) {
        for (const m of [{ what: 'as recorded', channels }, ...mutants(channels)]) {
          const one = validate(dir, main, m.channels, load, 1);
          const workers = validate(dir, main, m.channels, load, 2);
          expect({ what: m.what, load, ...workers }).toEqual({ what: m.what, load, ...one });
          dataFailures += workers.diagnostics.filter(dataRule).length;
          compared++;
          if (m.what === 'as recorded' && load.multifdCompression) expect(workers.valid).toBe(true);
        }
      }
      // the comparisons include verdicts only the workers could have given: packets that did not decompress
      expect(compared).toBeGreaterThan(20);
      expect(dataFailures).toBeGreaterThan(5);
    });
  }
});

describe('when workers decompress', () => {
  it('channels that are files of 1 MiB or more together, on two cores or more, unless threads is 1; never channels that are not files', () => {
    const dir = tempDir('migstream-offload-when-', 'test');
    const file = (name: string, bytes: number) => {
      const p = join(dir, name);
      writeFileSync(p, new Uint8Array(bytes));
      return { name, source: new dist.FileSource(p) };
    };
    const { MultifdDataOffload, OFFLOAD_MIN_CHANNEL_BYTES } = dist.offload;
    const half = OFFLOAD_MIN_CHANNEL_BYTES / 2;
    const big = [file('a', half), file('b', half)];
    const small = [file('c', half), file('d', half - 1)];
    const two = availableParallelism() >= 2;
    const made = (o: OffloadModule.MultifdDataOffload | undefined): boolean => {
      o?.close();
      return o !== undefined;
    };
    expect(made(MultifdDataOffload.forChannels(big))).toBe(two);
    expect(made(MultifdDataOffload.forChannels(small))).toBe(false);
    expect(made(MultifdDataOffload.forChannels(big, 1))).toBe(false);
    expect(made(MultifdDataOffload.forChannels(small, 2))).toBe(true);
    const inMemory = { name: 'm', source: new BufferSource(new Uint8Array(OFFLOAD_MIN_CHANNEL_BYTES)) };
    expect(made(MultifdDataOffload.forChannels([big[0], inMemory], 2))).toBe(false);
    expect(() => MultifdDataOffload.forChannels(big, 0)).toThrow(RangeError);
    for (const f of [...big, ...small]) f.source.close();
  });
});

describe('migstream validate --threads', () => {
  it('a zlib set over 1 MiB: decompressed in workers by default, the same JSON verdict as --threads 1, for the set and a packet broken on its third channel', () => {
    const dir = tempDir('migstream-offload-cli-', 'test');
    // the bench's generator: 4 channels of zlib packets (level 1, Z_SYNC_FLUSH per packet) from a model of a recorded 7.2 set
    const made = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { writeMultifdSet } = await import(${JSON.stringify(join(ROOT, 'dist', 'bench', 'multifd-set.js'))});
         await writeMultifdSet(${JSON.stringify(ROOT)}, ${JSON.stringify(BIN)}, ${JSON.stringify(dir)}, 'z', 8 << 20, 4, 'zlib');`,
      ],
      { encoding: 'utf8' },
    );
    expect(made.stderr).toBe('');
    const main = join(dir, 'z.mig');
    const channelPaths = [0, 1, 2, 3].map((i) => join(dir, `z.multifd${i}.bin`));
    const size = channelPaths.reduce((n, p) => n + readFileSync(p).length, 0);
    expect(size).toBeGreaterThan(1 << 20); // past the default's threshold: workers decompress
    const run = (extra: string[]) => {
      const r = spawnSync(
        process.execPath,
        [
          BIN,
          'validate',
          main,
          ...channelPaths.flatMap((p) => ['--multifd', p]),
          '--multifd-compression',
          'zlib',
          '--format',
          'json',
          ...extra,
        ],
        { encoding: 'utf8' },
      );
      return {
        code: r.status,
        json: JSON.parse(r.stdout) as { valid: boolean; diagnostics: Diagnostic[] },
        stderr: r.stderr,
      };
    };
    const clean = run([]);
    expect(clean).toMatchObject({ code: 0, json: { valid: true, diagnostics: [] }, stderr: '' });
    expect(run(['--threads', '1'])).toEqual(clean);

    const third = read(channelPaths[2]);
    const p = compressedPackets(third)[2];
    third[p.data + 7] = (third[p.data + 7] ?? 0) ^ 0x55;
    writeFileSync(channelPaths[2], third);
    const broken = run([]);
    expect(broken.code).toBe(1);
    expect(broken.json.diagnostics).toEqual([
      expect.objectContaining({ rule: 'multifd/zlib-data', channel: channelPaths[2], offset: p.data }),
    ]);
    for (const threads of ['1', '3']) expect(run(['--threads', threads])).toEqual(broken);
  });

  it('refuses a thread count that is not a whole number from 1', () => {
    for (const bad of ['0', '1.5', 'x']) {
      const r = spawnSync(
        process.execPath,
        [BIN, 'validate', '--threads', bad, join(REAL, 'qemu-7.2', 'pc-paused.mig')],
        {
          encoding: 'utf8',
        },
      );
      expect({ bad, code: r.status }).toEqual({ bad, code: 2 }); // a usage error (design.md)
      expect(r.stderr).toMatch(/--threads.*a number from 1 to 64/);
    }
  });
});
