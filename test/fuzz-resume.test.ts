import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ResumableSeed } from '../src/fuzz/resume.js';
import { mutate, Prng, ReusedMutantBuffer } from '../src/fuzz/mutators.js';
import { firstDifference } from '../src/io/bytes.js';
import { BufferSource } from '../src/io/source.js';
import { openMainStream } from '../src/codec/open.js';
import { validateMain } from '../src/loader/validate.js';
import type { LoadOptions } from '../src/loader/load.js';
import type { MainRecord } from '../src/model/records.js';
import { VmstateCache } from '../src/vmstate/cache.js';
import { vmdescriptionText } from '../src/vmstate/vmdesc.js';
import { ramStreamBytes } from '../src/generator/synthetic-ram.js';
import { pcPausedWithZeroPages, REAL, ROOT } from './helpers.js';

/**
 * The fuzzer judges a mutant from the last checkpoint of its seed before the first byte it
 * changed. The verdict must be the one validateMain gives reading the mutant from its start,
 * on every kind of seed: RAM pages (checkpoints inside a section), PACKAGED postcopy, no
 * footers, no vmdescription, VFIO, many device sections, a multifd main channel.
 */
const SEEDS: [string, LoadOptions][] = [
  [join(REAL, 'qemu-7.2', 'pc-paused.mig'), {}],
  [join(REAL, 'qemu-11.1', 'pc-postcopy-ram.mig'), { capabilities: ['postcopy-ram'] }],
  [join(REAL, 'qemu-11.1', 'pc-no-section-footer.mig'), { sectionFooters: false }],
  [join(REAL, 'qemu-7.2', 'pc-suppress-vmdesc.mig'), {}],
  [join(REAL, 'qemu-10.0', 'q35-devices-running.mig'), {}],
  [join(REAL, 'qemu-11.1', 'pc-multifd-zstd-tcp.mig'), { capabilities: ['multifd'] }],
  [
    join(ROOT, 'fixtures', 'vfio', 'v2-precopy-switchover-ack-8.1.mig'),
    { capabilities: ['return-path', 'switchover-ack'] },
  ],
  [join(ROOT, 'fixtures', 'vfio', 'v2-two-devices-11.1.mig'), {}],
];

function recordsOf(bytes: Uint8Array): MainRecord[] {
  return [...openMainStream(new BufferSource(bytes), { copyData: true }).records()];
}

function fromStart(bytes: Uint8Array, load: LoadOptions): { valid: boolean; diagnostics: unknown[] } {
  const { valid, diagnostics } = validateMain(new BufferSource(bytes, 'mutant'), load);
  return { valid, diagnostics };
}

describe('fuzz: mutants judged from a checkpoint of their seed', () => {
  it.each(SEEDS)('%s: the verdict of every mutant equals a read from the start', (file, load) => {
    const bytes = new Uint8Array(readFileSync(file));
    const records = recordsOf(bytes);
    const seed = new ResumableSeed(bytes, 'mutant', load);
    expect(seed.checkpointCount).toBeGreaterThan(3);
    const rng = new Prng(21);
    const mutators = new Set<string>();
    // in one reused buffer, as the fuzzer makes them: nothing kept from one judgement may point into it
    const out = new ReusedMutantBuffer();
    for (let i = 0; i < 150; i++) {
      const m = mutate(bytes, records, rng, out);
      mutators.add(m.mutator);
      expect(seed.judge(m.bytes), `${m.mutator}: ${m.what}`).toEqual(fromStart(m.bytes, load));
    }
    // every record sent twice: the footer search and layout fits look past a record's end
    for (const r of records.filter((x) => !x.depth && x.kind !== 'ram')) {
      const end = r.offset + r.length;
      const twice = new Uint8Array(Buffer.concat([bytes.subarray(0, end), bytes.subarray(r.offset)]));
      expect(seed.judge(twice), `${r.kind} @${r.offset} twice`).toEqual(fromStart(twice, load));
    }
    expect(mutators.size).toBeGreaterThanOrEqual(6);
    // most mutants change something after a checkpoint: the comparison is not between two reads from the start
    expect(seed.counts.resumed).toBeGreaterThan(seed.counts.fromStart);
  });

  it('a mutant that changes the vmdescription, or has none left, is read with what it ends in', () => {
    const file = join(REAL, 'qemu-7.2', 'pc-paused.mig');
    const bytes = new Uint8Array(readFileSync(file));
    const records = recordsOf(bytes);
    const desc = records.find((r) => r.kind === 'vmdescription')!;
    const seed = new ResumableSeed(bytes, 'mutant', {});
    // a device's name in the JSON changed: its section is then undescribed, from the start
    const renamed = bytes.slice();
    const at = Buffer.from(renamed).indexOf('"mc146818rtc"', desc.offset);
    renamed[at + 1] = 'M'.charCodeAt(0);
    const cut = bytes.slice(0, desc.offset + 100);
    for (const m of [renamed, cut, bytes.slice(0, desc.offset), bytes.slice(0, desc.offset - 1)])
      expect(seed.judge(m)).toEqual(fromStart(m, {}));
    expect(seed.judge(renamed).valid).toBe(false);
  });
});

describe('fuzz: large seeds', () => {
  /** Mutants made by hand (the mutators' record lists would be large): byte flips spread over the stream, a cut, a page sent twice. */
  function handMutants(bytes: Uint8Array, page: MainRecord): Uint8Array[] {
    const flips = [0.1, 0.4, 0.7, 0.95].map((f) => {
      const m = bytes.slice();
      const at = Math.floor(bytes.length * f);
      m[at] = (m[at] ?? 0) ^ 0x5a;
      return m;
    });
    const cut = bytes.slice(0, Math.floor(bytes.length * 0.6));
    const end = page.offset + page.length;
    const twice = new Uint8Array(Buffer.concat([bytes.subarray(0, end), bytes.subarray(page.offset)]));
    return [...flips, cut, twice];
  }

  it('a seed of half a million zero pages keeps at most 4,096 checkpoints', () => {
    // pc-paused with one of its zero-page records (9 bytes) sent 500,000 times more
    const { bytes, zeroAt } = pcPausedWithZeroPages(500_000);
    let zero: MainRecord | undefined;
    for (const r of openMainStream(new BufferSource(bytes)).records())
      if (r.offset === zeroAt) {
        zero = r;
        break;
      }
    const seed = new ResumableSeed(bytes, 'mutant', {});
    // without the bound: one checkpoint in 64 records, 7,800 of them
    expect(seed.checkpointCount).toBeGreaterThan(2000);
    expect(seed.checkpointCount).toBeLessThanOrEqual(4097);
    for (const m of handMutants(bytes, zero!)) expect(seed.judge(m)).toEqual(fromStart(m, {}));
    expect(seed.counts.resumed).toBeGreaterThan(3);
  });

  it('mutants of a seed larger than a reader holds are judged as from the start', () => {
    // 24 MiB of pages: more than the 4 MiB a reader holds, so a resumed mutant is read in parts
    const bytes = ramStreamBytes(24 << 20);
    const seed = new ResumableSeed(bytes, 'mutant', {});
    let page: MainRecord | undefined;
    for (const r of openMainStream(new BufferSource(bytes)).records())
      if (r.kind === 'ram' && r.op === 'page') {
        page = r;
        break;
      }
    for (const m of handMutants(bytes, page!)) expect(seed.judge(m)).toEqual(fromStart(m, {}));
    expect(seed.counts.resumed).toBeGreaterThan(3);
  });
});

describe('firstDifference', () => {
  const naive = (a: Uint8Array, b: Uint8Array): number => {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return a.length === b.length ? -1 : n;
  };
  it('is the first index where two arrays differ, at any distance from the start', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300_000 }),
        fc.integer({ min: 0, max: 300_000 }),
        fc.integer({ min: -2, max: 2 }),
        (size, at, lengthChange) => {
          const a = new Uint8Array(size).map((_, i) => i * 7);
          const b = new Uint8Array(Math.max(0, size + lengthChange));
          b.set(a.subarray(0, b.length));
          if (at < b.length) b[at] = (b[at] + 1) & 0xff;
          expect(firstDifference(a, b)).toBe(naive(a, b));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('VmstateCache', () => {
  it('gives the tree read before for the same payload and description, and reads a changed payload afresh', () => {
    const bytes = new Uint8Array(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.mig')));
    const cache = new VmstateCache();
    type VmstateRecord = Extract<MainRecord, { kind: 'vmstate' }>;
    const devices = (b: Uint8Array, cached: boolean): VmstateRecord[] =>
      [...openMainStream(new BufferSource(b), cached ? { vmstateCache: cache } : {}).records()].filter(
        (r): r is VmstateRecord => r.kind === 'vmstate',
      );
    const first = devices(bytes, true);
    const again = devices(bytes, true);
    expect(first).toEqual(devices(bytes, false));
    expect(again.map((r) => r.node)).toEqual(first.map((r) => r.node));
    again.forEach((r, i) => expect(r.node).toBe(first[i]?.node));
    // one byte of the cpu section's payload changed: its tree is read from the new bytes
    const cpu = first.find((r) => r.idstr === 'cpu')!;
    const changed = bytes.slice();
    changed[cpu.offset + 8] ^= 0xff;
    const after = devices(changed, true).find((r) => r.idstr === 'cpu')!;
    expect(after.node).not.toBe(cpu.node);
    expect(after.node).toEqual(devices(changed, false).find((r) => r.idstr === 'cpu')!.node);
    expect(after.node).not.toEqual(cpu.node);
    // five more changed payloads of the cpu section: the seed's stays kept (the first one read)
    for (let i = 1; i <= 5; i++) {
      const again = bytes.slice();
      again[cpu.offset + 8 + i] ^= 0xff;
      devices(again, true);
    }
    expect(devices(bytes, true).find((r) => r.idstr === 'cpu')!.node).toBe(cpu.node);
  });
});

describe('vmdescriptionText', () => {
  it('reads the bytes it is given, also when an array it read before has changed in place since', () => {
    const bytes = new Uint8Array(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.mig')));
    const desc = recordsOf(bytes).find((r) => r.kind === 'vmdescription')!;
    const json = bytes.slice(desc.offset + 5, desc.offset + desc.length);
    const text = Buffer.from(json).toString('latin1');
    // other bytes first (a byte past ASCII: one character a byte), so that `json` is read, not found
    expect(vmdescriptionText(new Uint8Array([0x7b, 0xe9, 0x7d]))).toBe('{\u00e9}');
    expect(vmdescriptionText(json)).toBe(text);
    expect(vmdescriptionText(json.slice())).toBe(text);
    // the fuzzer's mutants share one buffer: the same array, other bytes
    json[2] = 0x41;
    expect(vmdescriptionText(json)).toBe(Buffer.from(json).toString('latin1'));
    expect(vmdescriptionText(bytes.subarray(desc.offset + 5, desc.offset + desc.length))).toBe(text);
  });
});
