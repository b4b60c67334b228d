import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzz, TargetRejectsSeedError, type FuzzSeed } from '../src/fuzz/run.js';
import { lengthFields, mutate, MUTATORS, Prng, ReusedMutantBuffer } from '../src/fuzz/mutators.js';
import type { MainRecord } from '../src/model/records.js';
import { openMainStream } from '../src/codec/open.js';
import { BufferSource } from '../src/io/source.js';
import { REAL, ROOT, tempDir } from './helpers.js';

const seed = (p: string): FuzzSeed => ({ name: p, bytes: new Uint8Array(readFileSync(p)) });
const seeds = [
  seed(join(REAL, 'qemu-11.1', 'pc-paused.mig')),
  seed(join(REAL, 'qemu-10.0', 'pc-postcopy-ram-return-path-tcp.mig')),
  seed(join(ROOT, 'fixtures', 'vfio', 'v2-precopy-switchover-ack-8.1.mig')),
];
const load = { capabilities: ['return-path', 'switchover-ack'], qemuVersion: '8.1' };

describe('fuzz', () => {
  it('the reference loader survives grammar-aware mutations: every input accepted or rejected, none crashes', () => {
    const r = fuzz(seeds, { runs: 400, seed: 7, target: { kind: 'builtin' }, timeoutMs: 10_000, load });
    expect(r.findings).toEqual([]);
    expect(r.runs).toBe(400);
    expect(r.outcomes.rejected).toBeGreaterThan(200); // most mutations break a rule
    expect(r.outcomes.accepted + r.outcomes.rejected).toBe(400);
  });

  it('is reproducible from its seed', () => {
    const a = fuzz(seeds, { runs: 50, seed: 3, target: { kind: 'builtin' }, timeoutMs: 10_000, load });
    const b = fuzz(seeds, { runs: 50, seed: 3, target: { kind: 'builtin' }, timeoutMs: 10_000, load });
    const runs = (r: typeof a) => ({ runs: r.runs, outcomes: r.outcomes, findings: r.findings });
    expect(runs(a)).toEqual(runs(b));
    expect(a.execsPerSecond).toBeGreaterThan(0);
  });

  it('every mutator finds something to break in a VFIO seed with commands', () => {
    const vfio = seeds[2];
    const records = [...openMainStream(new BufferSource(vfio.bytes), { copyData: true }).records()];
    const rng = new Prng(9);
    const used = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const m = mutate(vfio.bytes, records, rng);
      expect(Buffer.compare(Buffer.from(m.bytes), Buffer.from(vfio.bytes))).not.toBe(0);
      checkMutation(m, vfio.bytes, records);
      used.add(m.mutator);
    }
    expect([...used].sort()).toEqual(MUTATORS.map((m) => m.name).sort());
  });

  it('mutants built in one reused buffer are the mutants fresh arrays give, each before the next is made', () => {
    const vfio = seeds[2];
    const records = [...openMainStream(new BufferSource(vfio.bytes), { copyData: true }).records()];
    const fresh = new Prng(9);
    const reusing = new Prng(9);
    const out = new ReusedMutantBuffer();
    const buffers = new Set<ArrayBufferLike>();
    const used = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const a = mutate(vfio.bytes, records, fresh);
      const b = mutate(vfio.bytes, records, reusing, out);
      expect({ mutator: b.mutator, what: b.what }).toEqual({ mutator: a.mutator, what: a.what });
      expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes)), a.what).toBe(true);
      // a truncation is a view of the seed itself; every other mutant is written into the one buffer
      if (b.bytes.buffer !== vfio.bytes.buffer) buffers.add(b.bytes.buffer);
      used.add(b.mutator);
    }
    expect(used.size).toBe(MUTATORS.length);
    // grown at most a few times (a duplicated record makes a longer mutant), not one array a run
    expect(buffers.size).toBeLessThanOrEqual(3);
  });

  it('the command holds its memory over thousands of runs: 3,000 on pc-paused under 128 MiB RSS', () => {
    // through bin/migstream's dispatch, which sets the fuzzer's heap (src/cli/dispatch.ts): with
    // V8's defaults this run reaches about 131 MiB, and more with more runs
    const wrapper = join(tempDir('fuzz-rss-', 'test'), 'rss.cjs');
    writeFileSync(
      wrapper,
      `require(${JSON.stringify(join(ROOT, 'dist', 'cli', 'dispatch.cjs'))})\n` +
        `  .run(['node', 'migstream', ...process.argv.slice(2)])\n` +
        `  .then((code) => process.stderr.write(JSON.stringify({ code, maxRssMiB: process.resourceUsage().maxRSS / 1024 })));\n`,
    );
    const seedFile = join(REAL, 'qemu-7.2', 'pc-paused.mig');
    const r = spawnSync('node', [wrapper, 'fuzz', '-q', seedFile, '--runs', '3000', '--format', 'json'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const m = JSON.parse(r.stderr) as { code: number; maxRssMiB: number };
    expect(m.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { runs: number }).runs).toBe(3000);
    expect(m.maxRssMiB).toBeLessThan(128);
  }, 150_000);

  it('a command target that crashes on some inputs: each crash is a finding, saved with what was done', () => {
    const out = tempDir('fuzz-out-', 'test');
    // a stand-in loader: accepts the seed, segfaults on any input shorter than it, rejects the rest
    const command = `sh -c 'cmp -s "$1" ${seeds[0].name} && exit 0; test $(wc -c < "$1") -lt ${seeds[0].bytes.length} && kill -SEGV $$; exit 1' sh {}`;
    const r = fuzz([seeds[0]], {
      runs: 40,
      seed: 11,
      target: { kind: 'cmd', command },
      timeoutMs: 10_000,
      load,
      outDir: out,
    });
    expect(r.outcomes.crash).toBeGreaterThan(0);
    expect(r.findings.every((f) => f.outcome === 'crash' && f.mutator === 'truncate')).toBe(true);
    // every crash says the same (killed by SIGSEGV): one finding, counting the runs
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0].count).toBe(r.outcomes.crash);
    const f = r.findings[0];
    expect(existsSync(f.file!)).toBe(true);
    expect(readFileSync(f.file!).length).toBeLessThan(seeds[0].bytes.length);
    expect(JSON.parse(readFileSync(`${f.file}.json`, 'utf8')).what).toMatch(/^truncation at 0x/);
  });

  it('a command that does not exit in time is a hang', () => {
    const command = `sh -c 'cmp -s "$1" ${seeds[0].name} || sleep 5' sh {}`;
    const r = fuzz([seeds[0]], { runs: 1, seed: 1, target: { kind: 'cmd', command }, timeoutMs: 1000, load });
    expect(r.findings.map((f) => f.outcome)).toEqual(['hang']);
  });

  it('a command that exits with the hang status (bin/qemu-load: 3, the load never completed) is a hang', () => {
    const command = `sh -c 'cmp -s "$1" ${seeds[0].name} || exit 3' sh {}`;
    const r = fuzz([seeds[0]], {
      runs: 3,
      seed: 1,
      target: { kind: 'cmd', command },
      timeoutMs: 10_000,
      load,
      hangExitCode: 3,
    });
    expect(r.outcomes.hang).toBe(3);
    expect(r.findings.map((f) => [f.outcome, f.count])).toEqual([['hang', 3]]);
  });

  it('a target that does not accept the unmutated seed stops the run: a missing binary, a refusing loader', () => {
    expect(() =>
      fuzz([seeds[0]], {
        runs: 5,
        seed: 1,
        target: { kind: 'cmd', command: '/nonexistent-binary {}' },
        timeoutMs: 10_000,
        load,
      }),
    ).toThrow(TargetRejectsSeedError);
    expect(() =>
      fuzz([seeds[0]], { runs: 5, seed: 1, target: { kind: 'cmd', command: 'false' }, timeoutMs: 10_000, load }),
    ).toThrow(/does not accept the unmutated seed/);
  });
});

/** The bytes a mutation changed, as [first, last] (inclusive); for a truncation, the cut. */
function changed(a: Uint8Array, b: Uint8Array): number[] {
  const at: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) at.push(i);
  return at;
}

/** Each mutator did what its name and its report say, and nothing else. */
function checkMutation(m: ReturnType<typeof mutate>, seed: Uint8Array, records: MainRecord[]): void {
  const diff = changed(seed, m.bytes);
  const heads = (kinds: string[]) => records.filter((r) => kinds.includes(r.kind)).map((r) => r.offset);
  const reported = (re: RegExp) => parseInt(m.what.match(re)![1], 16);
  switch (m.mutator) {
    case 'truncate': {
      expect(m.bytes.length).toBeLessThan(seed.length);
      expect(diff).toEqual([]); // a prefix of the seed
      expect(reported(/^truncation at 0x([0-9a-f]+)/)).toBe(m.bytes.length);
      break;
    }
    case 'bad-header': {
      const at = reported(/@0x([0-9a-f]+)$/);
      const h = records.find((r) => r.kind === 'file_header')!;
      expect(at).toBeGreaterThanOrEqual(h.offset);
      expect(at).toBeLessThan(h.offset + 8);
      expect(diff).toEqual([at]);
      break;
    }
    case 'duplicate-record': {
      const [, off, len] = /@0x([0-9a-f]+) \((\d+) bytes\)$/.exec(m.what)!;
      const at = parseInt(off, 16);
      const n = Number(len);
      expect(records.some((r) => r.offset === at && r.length === n)).toBe(true);
      const want = Buffer.concat([seed.subarray(0, at + n), seed.subarray(at, at + n), seed.subarray(at + n)]);
      expect(Buffer.compare(Buffer.from(m.bytes), want)).toBe(0);
      break;
    }
    case 'bad-tag': {
      const at = reported(/@0x([0-9a-f]+)$/);
      expect(heads(['vfio_tag'])).toContain(at);
      expect(diff.every((i) => i >= at && i < at + 8)).toBe(true);
      break;
    }
    case 'bad-type': {
      const at = reported(/@0x([0-9a-f]+)/);
      expect(heads(['section', 'command', 'section_footer', 'eof'])).toContain(at);
      expect(diff).toEqual([at]);
      break;
    }
    case 'lying-length': {
      const at = reported(/@0x([0-9a-f]+)$/);
      const f = lengthFields(records).find((x) => x.at === at);
      expect(f, m.what).toBeDefined();
      expect(m.what).toContain(f!.what);
      expect(diff.every((i) => i >= at && i < at + f!.width)).toBe(true);
      break;
    }
    case 'bad-ram-flags': {
      const at = reported(/@0x([0-9a-f]+)$/);
      expect(heads(['ram'])).toContain(at);
      expect(diff.every((i) => i === at + 6 || i === at + 7)).toBe(true); // the flags are the low bits of the be64
      break;
    }
    case 'bad-command': {
      const at = reported(/@0x([0-9a-f]+)$/);
      expect(heads(['command'])).toContain(at);
      expect(diff.every((i) => i === at + 1 || i === at + 2)).toBe(true);
      break;
    }
    case 'flip-bytes': {
      const at = m.what
        .replace(/^bytes changed at /, '')
        .split(', ')
        .map((x) => parseInt(x, 16));
      expect(at.length).toBeGreaterThanOrEqual(1);
      expect(at.length).toBeLessThanOrEqual(4);
      expect(diff.every((i) => at.includes(i))).toBe(true);
      break;
    }
    default:
      throw new Error(`a mutator the test does not know: ${m.mutator}`);
  }
}
