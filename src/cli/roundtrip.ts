import { printStdout } from './output.js';
import { Option, type Command } from 'commander';
import type { ChannelKind } from '../codec/channels.js';
import { roundtripFile } from '../app/roundtrip.js';
import { reportErrorIn } from './report-in.js';
import { EXIT_INVALID, EXIT_OK, type ExitStatus } from './errors.js';
import { snapshotOption, withExamples } from './common.js';
import { withReadProgress } from './progress.js';

export function registerRoundtrip(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('roundtrip')
    .description('decode and re-encode each stream, comparing byte for byte (exit 0 identical, 1 differs or invalid)')
    .argument('<files...>', 'stream files')
    .addOption(
      new Option('--kind <kind>', 'channel kind (auto: QEVM = main, 0x11223344 = multifd, QCPR = cpr)')
        .choices(['auto', 'main', 'multifd', 'return-path', 'cpr'])
        .default('auto'),
    )
    .addOption(snapshotOption());
  withExamples(cmd, [
    'migstream roundtrip fixtures/real/qemu-7.2/*.mig',
    'migstream roundtrip fixtures/real/qemu-7.2/pc-multifd-tcp.multifd0.bin fixtures/real/qemu-7.2/pc-multifd-tcp.multifd1.bin',
  ]).action((files: string[], o: { kind: ChannelKind | 'auto'; snapshot?: string }) => {
    let code = EXIT_OK;
    for (const f of files) {
      // one verdict line per file as it goes: a bar only when there is one file
      const r = withReadProgress(files.length > 1, () => roundtripFile(f, o.kind, o.snapshot));
      if (r.error) {
        printStdout(`${f}: invalid\n`);
        code = Math.max(code, reportErrorIn(f, r.error));
      } else if (r.identical) {
        printStdout(`${f}: identical (${r.bytes} bytes, ${r.records} records)\n`);
      } else {
        printStdout(`${f}: differs at offset 0x${r.firstDifference!.toString(16)} (${r.firstDifference})\n`);
        code = Math.max(code, EXIT_INVALID);
      }
    }
    exit.set(code);
  });
}
