import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { streamStats } from '../src/app/stats.js';
import { decodeFile, fixtureIndex, REAL, ROOT } from './helpers.js';

/**
 * stats by phase, against the census the recording harness took of each file
 * (fixtures/real/index.json: record counts by type, commands, file size).
 */
const BIN = join(ROOT, 'bin', 'migstream');
const streams = fixtureIndex().flatMap((c) =>
  c.files
    .filter((f) => f.kind === 'stream' && existsSync(join(REAL, c.dir, f.file)))
    .map((f) => ({ path: join(REAL, c.dir, f.file), name: `${c.dir}/${f.file}`, census: f })),
);

describe('stats: the phases of every recording', () => {
  it('there are recordings to read', () => {
    expect(streams.length).toBeGreaterThanOrEqual(27);
  });

  for (const { path, name, census } of streams) {
    it(`${name}: the phases add up to the file; one iteration per RAM PART; completion from SWITCHOVER_START`, () => {
      const r = streamStats(path, {});
      if (r.channel !== 'main') throw new Error(`not a main stream: ${name}`);
      if (r.error) return; // a recording QEMU aborted (its own test covers it): no phases to check
      const phases = r.phases;
      expect(phases.reduce((n, p) => n + p.bytes, 0)).toBe(census.size);
      expect(phases.reduce((n, p) => n + p.records, 0)).toBe(r.summary.records);
      const records = census.scan.records ?? {};
      // RAM is the only iterable section in these recordings: each PART is one round
      expect(phases.filter((p) => p.phase.startsWith('iteration')).length).toBe(records.SECTION_PART ?? 0);
      expect(phases.some((p) => p.phase === 'completion')).toBe(
        (records.SECTION_END ?? 0) + (records.SECTION_FULL ?? 0) > 0,
      );
      if (census.scan.commands?.SWITCHOVER_START) {
        const cmd = decodeFile(path).records.find((x) => x.kind === 'command' && x.name === 'MIG_CMD_SWITCHOVER_START');
        expect(phases.at(-1)).toMatchObject({ phase: 'completion', bytes: census.size - (cmd?.offset ?? NaN) });
      }
    });
  }
});

describe('stats output', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, 'stats', ...args], { encoding: 'utf8' });

  it('--format json: sections, RAMBlocks and phases with their shares of the stream', () => {
    const f = join(REAL, 'qemu-11.1', 'q35-devices-running.mig');
    const r = run([f, '--format', 'json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      bytes: number;
      sections: { bytes: number; share: number }[];
      phases: { phase: string; bytes: number; share: number }[];
    };
    const size = streams.find((s) => s.path === f)?.census.size;
    expect(doc.bytes).toBe(size);
    expect(doc.phases.reduce((n, p) => n + p.bytes, 0)).toBe(size);
    expect(doc.phases.reduce((n, p) => n + p.share, 0)).toBeCloseTo(1, 3);
    for (const s of doc.sections) expect(s.share).toBeCloseTo(s.bytes / doc.bytes, 4);
  });

  it('--kind return-path: the messages the return path carried, as dump lists them', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-switchover-ack-tcp.main-return-path.bin');
    const r = run(['--kind', 'return-path', f, '--format', 'json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { messages: { name: string; count: number }[] };
    const dumped = spawnSync(process.execPath, [BIN, 'dump', '--kind', 'return-path', '--format', 'summary', f], {
      encoding: 'utf8',
    });
    const listed = (JSON.parse(dumped.stdout) as { messages: { name: string }[] }).messages.map((m) => m.name);
    const counts = new Map<string, number>();
    for (const n of listed) counts.set(n, (counts.get(n) ?? 0) + 1);
    expect(doc.messages.map((m) => [m.name, m.count])).toEqual([...counts]);
  });
});
