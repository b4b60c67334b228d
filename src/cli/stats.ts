import { printStdout } from './output.js';
import type { Command } from 'commander';
import { StreamError } from '../model/errors.js';
import { StreamSummary } from '../formats/summary.js';
import { openFromCli, openSource, streamOptions, type StreamCliOptions } from './common.js';
import { detectChannelKind } from '../codec/channels.js';
import { summarizeMultifdChannel } from '../multifd/summary.js';
import { reportError, setExitCode } from './errors.js';

export function registerStats(program: Command): void {
  const cmd = program
    .command('stats')
    .description('per-section and per-RAMBlock byte table')
    .argument('<file>', 'stream file, or - for stdin');
  streamOptions(cmd).action((file: string, o: StreamCliOptions) => {
    const src = openSource(file);
    if (detectChannelKind(src) === 'multifd') {
      // a multifd channel: one line of figures
      const { summary: sum, error } = summarizeMultifdChannel(src, o.pageSize);
      src.close();
      if (error) setExitCode(reportError(error));
      const j = sum.toJSON() as Record<string, unknown>;
      printStdout(
        table([
          Object.keys(j).filter((k) => k !== 'deviceStateBytes'),
          Object.entries(j)
            .filter(([k]) => k !== 'deviceStateBytes')
            .map(([, v]) => String(v)),
        ]) + '\n',
      );
      return;
    }
    src.close();
    const s = openFromCli(file, o);
    const sum = new StreamSummary();
    let code = 0;
    try {
      for (const rec of s.records()) {
        sum.closeOpenSection(rec);
        sum.add(rec);
      }
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      code = reportError(e);
    } finally {
      s.close();
    }
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
    setExitCode(code);
  });
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((v, i) => (i === 0 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ')).join('\n');
}
