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
      // named in order: setup, iteration 1..N, completion
      const iterations = phases.filter((p) => p.phase.startsWith('iteration')).map((p) => p.phase);
      expect(phases[0]?.phase).toBe('setup');
      expect(iterations).toEqual(iterations.map((_, i) => `iteration ${i + 1}`));
      // every RAM page the census counted (normal, zero, XBZRLE, compressed, mapped-ram) is in one phase
      const ram = census.scan.ram ?? {};
      const pages = ['PAGE', 'ZERO', 'XBZRLE', 'COMPRESS_PAGE', 'MAPPED_RAM_pages_set'].reduce(
        (n, k) => n + (ram[k] ?? 0),
        0,
      );
      expect(phases.reduce((n, p) => n + p.ramPages, 0)).toBe(pages);
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

describe('stats --multifd: each channel beside its main stream, and bytes per SYNC round', () => {
  interface ChannelScan {
    init: { channel_id: number };
    size: number;
    packets: { packets: number; SYNC: number; normal_pages: number; zero_pages_field: number } & Record<string, number>;
  }
  // the multifd sets of fixtures/real, with the harness's census of each channel
  const sets = fixtureIndex()
    .map((c) => ({
      main: join(REAL, c.dir, `${c.case}.mig`),
      channels: c.files
        .filter((f) => /\.multifd\d+\.bin$/.test(f.file))
        .map((f) => ({ path: join(REAL, c.dir, f.file), scan: f.scan as unknown as ChannelScan })),
    }))
    .filter((s) => s.channels.length > 0 && existsSync(s.main));

  it('there are multifd sets to read', () => {
    expect(sets.length).toBeGreaterThanOrEqual(4);
  });

  for (const set of sets) {
    it(`${set.main.slice(REAL.length + 1)}: channel figures as the census counts them; rounds add up to each channel`, () => {
      const args = set.channels.flatMap((c) => ['--multifd', c.path]);
      const r = spawnSync(process.execPath, [BIN, 'stats', set.main, ...args, '--format', 'json'], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      const doc = JSON.parse(r.stdout) as {
        multifd: {
          file: string;
          channelId: number;
          bytes: number;
          packets: number;
          syncPackets: number;
          normalPages: number;
          zeroPages: number;
          compression: number;
          rounds: { bytes: number; pages: number; packets: number; synced: boolean }[];
        }[];
      };
      expect(doc.multifd.map((m) => m.file)).toEqual(set.channels.map((c) => c.path));
      set.channels.forEach((c, i) => {
        const m = doc.multifd[i];
        const census = c.scan.packets;
        expect(m?.channelId).toBe(c.scan.init.channel_id);
        expect(m?.bytes).toBe(c.scan.size);
        expect(m?.packets).toBe(census.packets);
        expect(m?.syncPackets).toBe(census.SYNC);
        expect(m?.normalPages).toBe(census.normal_pages);
        expect(m?.zeroPages).toBe(census.zero_pages_field);
        // the census counts packets by (flags & MULTIFD_FLAG_COMPRESSION_MASK) >> 1; SYNC packets carry no method
        const methods = Object.keys(census).filter((k) => k.startsWith('compression_') && k !== 'compression_0');
        expect(methods.length).toBeLessThanOrEqual(1);
        expect(m?.compression).toBe(methods.length ? Number(methods[0]?.slice('compression_'.length)) << 1 : 0);
        // one round per SYNC packet; the bytes after the last SYNC (if any) form a last, unsynced round
        const rounds = m?.rounds ?? [];
        expect(rounds.filter((x) => x.synced).length).toBe(census.SYNC);
        expect(rounds.reduce((n, x) => n + x.bytes, 0)).toBe(c.scan.size);
        expect(rounds.reduce((n, x) => n + x.packets, 0)).toBe(census.packets);
        expect(rounds.reduce((n, x) => n + x.pages, 0)).toBe(census.normal_pages + census.zero_pages_field);
      });
      const text = spawnSync(process.execPath, [BIN, 'stats', set.main, ...args], { encoding: 'utf8' }).stdout;
      const total = set.channels.reduce((n, c) => n + c.scan.size, 0);
      expect(text).toContain(`${total} bytes on ${set.channels.length} multifd channels`);
      // the round chart: a header, then one line per round
      const chart = text
        .slice(text.indexOf('\nround ') + 1)
        .trimEnd()
        .split('\n');
      expect(chart.length - 1).toBe(Math.max(...doc.multifd.map((m) => m.rounds.length)));
    });
  }
});
