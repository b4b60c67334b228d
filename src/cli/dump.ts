import { Command, Option } from 'commander';
import { dumpStream, type DumpRequest } from '../app/dump.js';
import { collectValue, printWarnings, streamOptions, withExamples } from './common.js';
import { reportErrorIn } from './report-in.js';
import { EXIT_OK, warnLine, type ExitStatus } from './errors.js';
import { TextOut } from './output.js';
import { withReadProgress } from './progress.js';

interface DumpOptions extends DumpRequest {
  output?: string;
}

export function registerDump(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('dump')
    .description(
      "decode a stream to JSON (analyze = analyze-migration.py's state dump; ir = lossless; desc = its vmdescription)",
    )
    .argument('<file>', 'stream file, or - for stdin')
    .addOption(
      new Option('-f, --format <format>', 'output format')
        .choices(['analyze', 'ir', 'summary', 'desc'])
        .default('analyze'),
    )
    .option('-o, --output <file>', 'write here instead of stdout')
    .option('--inline', 'ir: embed large payloads as base64 instead of referring to the input file')
    .addOption(
      new Option('--kind <kind>', 'channel kind (auto: QEVM = main, 0x11223344 = multifd, QCPR = cpr)')
        .choices(['auto', 'main', 'multifd', 'return-path', 'cpr'])
        .default('auto'),
    )
    .option(
      '--multifd <file>',
      'a multifd channel of this main stream, repeatable: summary per channel, --vfio-extract of multifd devices',
      collectValue,
      [],
    )
    .option('--vfio-extract <dir>', "write each VFIO device's data stream and config state into DIR")
    .option(
      '--ram <mode>',
      'analyze: RAM as "sizes" (like the script), "summary" (+ page counts), "hex" (like -m) or "extract:DIR" (like -x)',
      'sizes',
    )
    .option(
      '-x, --extract <dir>',
      'like analyze-migration.py -x: one file per RAMBlock, plus desc.json and state.json, into DIR',
    );
  withExamples(cmd, [
    'migstream dump fixtures/real/qemu-7.2/pc-paused.mig --format summary',
    "migstream dump fixtures/real/qemu-7.2/pc-paused.mig -o pc.json            # analyze-migration.py's JSON",
    'migstream dump fixtures/real/qemu-7.2/pc-paused.mig --format ir -o pc.ir.json   # lossless; encode writes it back',
    'cat fixtures/real/qemu-7.2/pc-paused.mig | migstream dump - --format desc | head -5',
    'migstream dump fixtures/real/qemu-7.2/pc-multifd-tcp.mig --format summary --multifd fixtures/real/qemu-7.2/pc-multifd-tcp.multifd0.bin --multifd fixtures/real/qemu-7.2/pc-multifd-tcp.multifd1.bin',
    'migstream dump fixtures/vfio/multifd-10.0.mig --multifd fixtures/vfio/multifd-10.0.multifd0.bin --multifd fixtures/vfio/multifd-10.0.multifd1.bin --vfio-extract vfio',
  ]);
  streamOptions(cmd).action((file: string, o: DumpOptions) => {
    const out = new TextOut(o.output);
    let r;
    try {
      // the output goes to stdout as it is made unless -o names a file
      r = withReadProgress(o.output === undefined || o.output === '-', () =>
        dumpStream(file, o, out.write, out.writeBytes),
      );
    } finally {
      out.close();
    }
    printWarnings(r.warnings);
    for (const n of r.notes) warnLine(n);
    exit.set(r.error ? reportErrorIn(file, r.error) : EXIT_OK);
  });
}
