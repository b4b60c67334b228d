import { printStdout } from './output.js';
import type { Command } from 'commander';
import { streamStats } from '../app/stats.js';
import { streamOptions, withExamples, type StreamCliOptions } from './common.js';
import { EXIT_OK, reportErrorIn, type ExitStatus } from './errors.js';
import { withReadProgress } from './progress.js';

export function registerStats(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('stats')
    .description('per-section and per-RAMBlock byte table')
    .argument('<file>', 'stream file, or - for stdin');
  withExamples(cmd, [
    'migstream stats fixtures/real/qemu-11.1/q35-devices-running.mig',
    'migstream stats fixtures/real/qemu-7.2/pc-multifd-tcp.multifd0.bin',
  ]);
  streamOptions(cmd).action((file: string, o: StreamCliOptions) => {
    const r = withReadProgress(false, () => streamStats(file, o));
    const code = r.error ? reportErrorIn(file, r.error) : EXIT_OK;
    if (r.channel === 'multifd') {
      // a multifd channel: one line of figures
      const j = r.summary.toJSON() as Record<string, unknown>;
      printStdout(
        table([
          Object.keys(j).filter((k) => k !== 'deviceStateBytes'),
          Object.entries(j)
            .filter(([k]) => k !== 'deviceStateBytes')
            .map(([, v]) => String(v)),
        ]) + '\n',
      );
      exit.set(code);
      return;
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
    printStdout(table(rows) + '\n' + table(blocks) + `\n${sum.bytes} bytes, ${sum.records} records\n`);
    exit.set(code);
  });
}

/** Columns as wide as their widest cell; the first left-aligned, the figures right-aligned. */
function table(rows: string[][]): string {
  const width: number[] = [];
  for (const r of rows) r.forEach((v, i) => (width[i] = Math.max(width[i] ?? 0, v.length)));
  return rows
    .map((r) => r.map((v, i) => (i === 0 ? v.padEnd(width[i] ?? 0) : v.padStart(width[i] ?? 0))).join('  '))
    .join('\n');
}
