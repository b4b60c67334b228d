import { printStdout } from './output.js';
import { Option, type Command } from 'commander';
import { streamStats, type MultifdChannelStats, type StatsResult } from '../app/stats.js';
import type { MultifdSummary } from '../multifd/summary.js';
import type { ChannelKind } from '../codec/channels.js';
import type { PhaseStats } from '../formats/phases.js';
import { collectValue, streamOptions, withExamples, type StreamCliOptions } from './common.js';
import { reportErrorIn } from './report-in.js';
import { EXIT_OK, type ExitStatus } from './errors.js';
import { withReadProgress } from './progress.js';

interface StatsCliOptions extends StreamCliOptions {
  kind: ChannelKind | 'auto';
  format: 'text' | 'json';
  multifd: string[];
}

export function registerStats(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('stats')
    .description('bytes per section, RAMBlock and migration phase (setup, each precopy iteration, completion)')
    .argument('<file>', 'stream file, or - for stdin')
    .addOption(
      new Option('--kind <kind>', 'channel kind (auto: QEVM = main, 0x11223344 = multifd, QCPR = cpr)')
        .choices(['auto', 'main', 'multifd', 'return-path', 'cpr'])
        .default('auto'),
    )
    .addOption(new Option('--format <format>', 'tables or one JSON document').choices(['text', 'json']).default('text'))
    .option(
      '--multifd <file>',
      "a multifd channel capture of this stream, repeatable: each channel's figures and bytes per SYNC round",
      collectValue,
      [],
    );
  withExamples(cmd, [
    'migstream stats fixtures/real/qemu-11.1/q35-devices-running.mig',
    'migstream stats fixtures/real/qemu-7.2/pc-dirty-iterations.mig --format json > stats.json',
    'migstream stats fixtures/real/qemu-7.2/pc-multifd-tcp.multifd0.bin',
    'migstream stats fixtures/real/qemu-10.0/pc-multifd-tcp.mig --multifd fixtures/real/qemu-10.0/pc-multifd-tcp.multifd0.bin --multifd fixtures/real/qemu-10.0/pc-multifd-tcp.multifd1.bin',
    'migstream stats --kind return-path fixtures/real/qemu-10.0/pc-switchover-ack-tcp.main-return-path.bin',
  ]);
  streamOptions(cmd).action((file: string, o: StatsCliOptions) => {
    const r = withReadProgress(false, () => streamStats(file, o));
    let code = r.error ? reportErrorIn(file, r.error) : EXIT_OK;
    if (r.channel === 'main')
      for (const ch of r.multifd) if (ch.error) code = Math.max(code, reportErrorIn(ch.file, ch.error));
    printStdout(o.format === 'json' ? JSON.stringify(statsJson(file, r), null, 2) + '\n' : statsText(r));
    exit.set(code);
  });
}

/** One JSON document: the figures, each share of the stream's bytes, the phases. */
export function statsJson(file: string, r: StatsResult): object {
  const error = r.error?.message ?? null;
  if (r.channel === 'multifd') return { file, ...multifdJson(r.summary), error };
  if (r.channel === 'return-path') return { file, channel: 'return-path', bytes: r.bytes, messages: r.messages, error };
  const sum = r.summary;
  const share = (n: number): number => (sum.bytes ? Math.round((n / sum.bytes) * 10000) / 10000 : 0);
  return {
    file,
    channel: 'main',
    bytes: sum.bytes,
    records: sum.records,
    sections: [...sum.sections.values()].map((st) => ({
      idstr: st.idstr,
      instanceId: st.instanceId,
      ...st.parts,
      bytes: st.bytes,
      share: share(st.bytes),
    })),
    ramBlocks: [...sum.ramBlocks].map(([name, b]) => ({
      name,
      usedLength: b.usedLength,
      pages: b.pages,
      zeroPages: b.zeroPages,
      xbzrlePages: b.xbzrlePages,
      compressedPages: b.compressedPages,
      payloadBytes: b.payloadBytes,
    })),
    phases: r.phases.map((p) => ({ ...p, share: share(p.bytes) })),
    multifd: r.multifd.map((ch) => ({ file: ch.file, ...multifdJson(ch.summary), error: ch.error?.message ?? null })),
    error,
  };
}

function multifdJson(sum: MultifdSummary): object {
  return { ...sum.toJSON(), bytes: sum.bytes, rounds: sum.allRounds() };
}

function statsText(r: StatsResult): string {
  if (r.channel === 'multifd') {
    // a multifd channel: one line of figures, then its rounds
    const j = r.summary.toJSON() as Record<string, unknown>;
    const keys = Object.keys(j).filter((k) => k !== 'deviceStateBytes');
    return table([keys, keys.map((k) => String(j[k]))]) + '\n\n' + roundChart([r.summary]);
  }
  if (r.channel === 'return-path') {
    const rows = [['message', 'count', 'bytes'], ...r.messages.map((m) => [m.name, String(m.count), String(m.bytes)])];
    return table(rows) + `\n${r.bytes} bytes\n`;
  }
  const sum = r.summary;
  const rows: string[][] = [['section', 'instance', 'START', 'PART', 'END', 'FULL', 'bytes']];
  for (const st of sum.sections.values()) {
    rows.push([
      st.idstr,
      String(st.instanceId),
      String(st.parts.START),
      String(st.parts.PART),
      String(st.parts.END),
      String(st.parts.FULL),
      String(st.bytes),
    ]);
  }
  const blocks: string[][] = [['RAMBlock', 'used_length', 'pages', 'zero', 'xbzrle', 'compressed', 'payload bytes']];
  for (const [name, b] of sum.ramBlocks) {
    blocks.push([
      name,
      String(b.usedLength),
      String(b.pages),
      String(b.zeroPages),
      String(b.xbzrlePages),
      String(b.compressedPages),
      String(b.payloadBytes),
    ]);
  }
  return (
    table(rows) +
    '\n' +
    table(blocks) +
    '\n' +
    phaseChart(r.phases, sum.bytes) +
    `${sum.bytes} bytes, ${sum.records} records\n` +
    (r.multifd.length ? '\n' + multifdText(r.multifd) : '')
  );
}

/** The channels side by side, then the bytes each carried per SYNC round. */
function multifdText(channels: readonly MultifdChannelStats[]): string {
  const rows = [['multifd channel', 'id', 'bytes', 'packets', 'SYNC', 'normal pages', 'zero pages']];
  for (const ch of channels) {
    const s = ch.summary;
    rows.push([
      ch.file,
      String(s.channelId ?? '?'),
      String(s.bytes),
      String(s.packets),
      String(s.syncPackets),
      String(s.normalPages),
      String(s.zeroPages),
    ]);
  }
  const total = channels.reduce((n, ch) => n + ch.summary.bytes, 0);
  return (
    table(rows) +
    `\n${total} bytes on ${channels.length} multifd channels\n\n` +
    roundChart(channels.map((c) => c.summary))
  );
}

/**
 * Bytes per SYNC round and channel, with a bar of each round's share of all the channels'
 * bytes. A round that ended without a SYNC (the channel's last, unsynced bytes) is marked.
 */
function roundChart(channels: readonly MultifdSummary[]): string {
  const rounds = channels.map((c) => c.allRounds());
  const count = Math.max(0, ...rounds.map((r) => r.length));
  const total = channels.reduce((n, c) => n + c.bytes, 0);
  const header = ['round', ...channels.map((c, i) => `channel ${c.channelId ?? i}`), 'bytes', 'pages', 'share'];
  const rows = [channels.length > 1 ? header : header.filter((_, i) => i !== 1)];
  const shares: number[] = [];
  for (let i = 0; i < count; i++) {
    const these = rounds.map((r) => r[i]);
    const bytes = these.reduce((n, r) => n + (r?.bytes ?? 0), 0);
    const pages = these.reduce((n, r) => n + (r?.pages ?? 0), 0);
    const synced = these.every((r) => r === undefined || r.synced);
    const frac = total ? bytes / total : 0;
    const perChannel = channels.length > 1 ? these.map((r) => String(r?.bytes ?? 0)) : [];
    rows.push([
      `${i + 1}${synced ? '' : ' (no SYNC)'}`,
      ...perChannel,
      String(bytes),
      String(pages),
      `${(frac * 100).toFixed(1)}%`,
    ]);
    shares.push(frac);
  }
  return barTable(rows, shares);
}

/** The phases as a table with a bar of each one's share of the stream (the part after SWITCHOVER_START is downtime). */
function phaseChart(phases: readonly PhaseStats[], total: number): string {
  const rows = [['phase', 'bytes', 'records', 'RAM pages', 'share']];
  const shares: number[] = [];
  for (const p of phases) {
    const frac = total ? p.bytes / total : 0;
    rows.push([p.phase, String(p.bytes), String(p.records), String(p.ramPages), `${(frac * 100).toFixed(1)}%`]);
    shares.push(frac);
  }
  return barTable(rows, shares);
}

/** A table whose rows after the header end in a bar as long as their share (at least one mark when above zero). */
function barTable(rows: string[][], shares: readonly number[]): string {
  const width = 30;
  return (
    table(rows)
      .split('\n')
      .map((line, i) => {
        const share = i === 0 ? 0 : (shares[i - 1] ?? 0);
        return share > 0 ? `${line}  ${'#'.repeat(Math.max(1, Math.round(share * width)))}` : line;
      })
      .join('\n') + '\n'
  );
}

/** Columns as wide as their widest cell; the first left-aligned, the figures right-aligned. */
function table(rows: string[][]): string {
  const width: number[] = [];
  for (const r of rows) r.forEach((v, i) => (width[i] = Math.max(width[i] ?? 0, v.length)));
  return rows
    .map((r) => r.map((v, i) => (i === 0 ? v.padEnd(width[i] ?? 0) : v.padStart(width[i] ?? 0))).join('  '))
    .join('\n');
}
