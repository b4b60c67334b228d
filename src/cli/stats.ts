import { printStdout } from './output.js';
import { Option, type Command } from 'commander';
import { streamStats, type StatsResult } from '../app/stats.js';
import type { ChannelKind } from '../codec/channels.js';
import type { PhaseStats } from '../formats/phases.js';
import { streamOptions, withExamples, type StreamCliOptions } from './common.js';
import { EXIT_OK, reportErrorIn, type ExitStatus } from './errors.js';
import { withReadProgress } from './progress.js';

interface StatsCliOptions extends StreamCliOptions {
  kind: ChannelKind | 'auto';
  format: 'text' | 'json';
}

export function registerStats(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('stats')
    .description('bytes per section, RAMBlock and migration phase (setup, each precopy iteration, completion)')
    .argument('<file>', 'stream file, or - for stdin')
    .addOption(
      new Option('--kind <kind>', 'channel kind (auto: QEVM = main, 0x11223344 = multifd)')
        .choices(['auto', 'main', 'multifd', 'return-path'])
        .default('auto'),
    )
    .addOption(
      new Option('--format <format>', 'tables or one JSON document').choices(['text', 'json']).default('text'),
    );
  withExamples(cmd, [
    'migstream stats fixtures/real/qemu-11.1/q35-devices-running.mig',
    'migstream stats fixtures/real/qemu-7.2/pc-dirty-iterations.mig --format json > stats.json',
    'migstream stats fixtures/real/qemu-7.2/pc-multifd-tcp.multifd0.bin',
    'migstream stats --kind return-path fixtures/real/qemu-10.0/pc-switchover-ack-tcp.main-return-path.bin',
  ]);
  streamOptions(cmd).action((file: string, o: StatsCliOptions) => {
    const r = withReadProgress(false, () => streamStats(file, o));
    const code = r.error ? reportErrorIn(file, r.error) : EXIT_OK;
    printStdout(o.format === 'json' ? JSON.stringify(statsJson(file, r), null, 2) + '\n' : statsText(r));
    exit.set(code);
  });
}

/** One JSON document: the figures, each share of the stream's bytes, the phases. */
export function statsJson(file: string, r: StatsResult): object {
  const error = r.error?.message ?? null;
  if (r.channel === 'multifd') return { file, channel: 'multifd', ...r.summary.toJSON(), error };
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
    error,
  };
}

function statsText(r: StatsResult): string {
  if (r.channel === 'multifd') {
    // a multifd channel: one line of figures
    const j = r.summary.toJSON() as Record<string, unknown>;
    const keys = Object.keys(j).filter((k) => k !== 'deviceStateBytes');
    return table([keys, keys.map((k) => String(j[k]))]) + '\n';
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
    `${sum.bytes} bytes, ${sum.records} records\n`
  );
}

/** The phases as a table with a bar of each one's share of the stream (the part after SWITCHOVER_START is downtime). */
function phaseChart(phases: readonly PhaseStats[], total: number): string {
  const width = 30;
  const rows = [['phase', 'bytes', 'records', 'RAM pages', 'share']];
  const bars = [''];
  for (const p of phases) {
    const frac = total ? p.bytes / total : 0;
    rows.push([p.phase, String(p.bytes), String(p.records), String(p.ramPages), `${(frac * 100).toFixed(1)}%`]);
    bars.push('#'.repeat(Math.max(p.bytes ? 1 : 0, Math.round(frac * width))));
  }
  return (
    table(rows)
      .split('\n')
      .map((line, i) => (bars[i] ? `${line}  ${bars[i]}` : line))
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
