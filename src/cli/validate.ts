import { printStdout } from './output.js';
import { outColor } from './color.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { hex, UsageError } from '../model/errors.js';
import { diagnosticJson, pathParts } from '../model/diagnostic.js';
import { isReleaseText } from '../../grammar/version.js';
import { NEWEST_QEMU } from '../loader/load.js';
import { streamFilesOf, validateFile } from '../app/validate.js';
import type { ValidationResult } from '../loader/validate.js';
import { collectValue, streamOptions, withExamples } from './common.js';
import { hexContext } from './hex-context.js';
import { hostname } from 'node:os';
import { junitReport, sarifReport } from '../formats/ci-reports.js';
import { MIGSTREAM_VERSION } from '../model/version.js';
import { withReadProgress } from './progress.js';
import { EXIT_INVALID, EXIT_OK, type ExitStatus } from './errors.js';

interface ValidateOptions {
  capability: string[];
  snapshot?: string;
  qemuVersion?: string;
  strict?: boolean;
  format: 'text' | 'json' | 'junit' | 'sarif';
  configuration: boolean;
  sectionFooter: boolean;
  vfioMultifdTransfer: 'auto' | 'on' | 'off';
  vfioLoadConfigAfterIter?: boolean;
  pageSize?: number;
  multifd: string[];
  returnPath?: string;
  multifdCompression?: string;
  multifdChannels?: number;
  vmsd?: string;
  profile?: string;
  machine?: string;
  uuid?: string;
  threads?: number;
}

/** An option's parser: a whole number from `min` to `max`. */
function wholeNumberIn(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`a number from ${min} to ${max}`);
    return n;
  };
}

export function registerValidate(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('validate')
    .description("run the reference loader (QEMU's destination rules) over streams: exit 0 all valid, 1 any invalid")
    .argument('<files...>', 'main-channel streams (a directory: its *.mig files), or - for stdin')
    .option(
      '--qemu-version <x.y>',
      `destination QEMU release (default: the one the stream's machine type names, pc-q35-7.2: 7.2; else ${NEWEST_QEMU})`,
    )
    .addOption(
      new Option(
        '--format <format>',
        'text lines, one JSON document, a JUnit XML report (a test case per stream) or SARIF 2.1.0 (GitHub code scanning)',
      )
        .choices(['text', 'json', 'junit', 'sarif'])
        .default('text'),
    )
    .option('--no-configuration', 'the destination has send-configuration off (no QEMU_VM_CONFIGURATION expected)')
    .option('--no-section-footer', 'the destination has send-section-footer off (no QEMU_VM_SECTION_FOOTER expected)')
    .addOption(
      new Option('--vfio-multifd-transfer <mode>', 'vfio-pci x-migration-multifd-transfer')
        .choices(['auto', 'on', 'off'])
        .default('auto'),
    )
    .option('--vfio-load-config-after-iter', 'vfio-pci x-migration-load-config-after-iter=on (10.1+)')
    .addOption(
      new Option('--multifd-compression <method>', "the destination's multifd-compression parameter").choices([
        'none',
        'zlib',
        'zstd',
        'qpl',
        'uadk',
        'qatzip',
      ]),
    )
    .addOption(
      new Option(
        '--multifd-channels <n>',
        "the destination's multifd-channels parameter (QEMU's default: 2)",
      ).argParser(wholeNumberIn(1, 255)),
    )
    .option('--multifd <file>', 'a multifd channel capture, repeatable (in any order)', collectValue, [])
    .addOption(
      new Option(
        '--threads <n>',
        'decompress zlib/zstd multifd channels on N threads (1: on the main one; default: as many as cores, at most 4, once the channels reach 1 MiB together)',
      ).argParser(wholeNumberIn(1, 64)),
    )
    .option('--return-path <file>', 'the return-path capture (destination -> source)')
    .option(
      '--profile <file>',
      "the destination: a stream it accepted (same QEMU, machine, devices) or a JSON from `migstream profile`; device payloads are then read by the destination's layouts",
    )
    .option(
      '--machine <type>',
      "the destination's machine type (-machine pc-i440fx-7.2): the stream's must be the same",
    )
    .option('--uuid <uuid>', "the destination's -uuid: a stream with the uuid subsection (validate-uuid) must carry it")
    .option(
      '--strict',
      'also fail on what QEMU ignores but other readers need (a vmdescription cut short after QEMU_VM_EOF)',
    );
  withExamples(cmd, [
    'migstream validate fixtures/real/qemu-7.2/pc-paused.mig',
    'migstream validate fixtures/real/qemu-11.1 --format json > verdicts.json   # exit 1: five were saved with settings the default destination lacks',
    'migstream validate fixtures/vfio/bad-init-data-twice.mig   # exit 1: the rule, offset and section',
    'migstream validate fixtures/real/qemu-7.2/pc-multifd-tcp.mig --capability multifd --multifd fixtures/real/qemu-7.2/pc-multifd-tcp.multifd0.bin --multifd fixtures/real/qemu-7.2/pc-multifd-tcp.multifd1.bin',
    'migstream validate fixtures/real/qemu-7.2/pc-x-ignore-shared.mig --capability x-ignore-shared',
  ]);
  streamOptions(cmd).action((args: string[], o: ValidateOptions) => {
    if (o.qemuVersion !== undefined && !isReleaseText(o.qemuVersion))
      throw new UsageError(`--qemu-version takes X.Y (got ${JSON.stringify(o.qemuVersion)})`);
    const files = streamFilesOf(args);
    if (files.length > 1 && (o.multifd.length || o.returnPath))
      throw new UsageError('--multifd and --return-path belong to one main stream: give one FILE with them');
    // the verdicts are printed once all files are read
    const started = new Date();
    const results = withReadProgress(false, () =>
      files.map((file) => {
        const t0 = process.hrtime.bigint();
        const r = validateFile(file, {
          capabilities: o.capability,
          qemuVersion: o.qemuVersion,
          // --no-x only ever says false: otherwise the profile's (or QEMU's default) decides
          sendConfiguration: o.configuration ? undefined : false,
          sectionFooters: o.sectionFooter ? undefined : false,
          strict: o.strict,
          vfioMultifdTransfer: o.vfioMultifdTransfer,
          vfioLoadConfigAfterIter: o.vfioLoadConfigAfterIter ?? false,
          multifdCompression: o.multifdCompression,
          multifdChannels: o.multifdChannels,
          vmsd: o.vmsd,
          pageSize: o.pageSize,
          multifd: o.multifd,
          returnPath: o.returnPath,
          profile: o.profile,
          machine: o.machine,
          uuid: o.uuid,
          snapshot: o.snapshot,
          threads: o.threads,
        });
        return { file, ...r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
      }),
    );
    const invalid = results.filter((r) => !r.valid).length;
    const ctx = { version: MIGSTREAM_VERSION, hostname: hostname(), started };
    if (o.format === 'junit') printStdout(junitReport(results, ctx));
    else if (o.format === 'sarif') printStdout(sarifReport(results, ctx));
    else if (o.format === 'json') {
      const doc = (r: (typeof results)[number]) => ({
        file: r.file,
        valid: r.valid,
        diagnostics: r.diagnostics.map(diagnosticJson),
        warnings: r.warnings.map((w) => ({
          offset: w.offset,
          offsetHex: hex(w.offset),
          path: pathParts(w.path),
          message: w.message,
        })),
      });
      const first = results[0];
      // one file: its document, as before; several: one document with each file's
      printStdout(
        JSON.stringify(
          results.length === 1 && first
            ? doc(first)
            : { files: results.map(doc), valid: results.length - invalid, invalid },
          null,
          2,
        ) + '\n',
      );
    } else {
      for (const r of results) printText(r.file, r);
      if (results.length > 1)
        printStdout(`${results.length} files: ${results.length - invalid} valid, ${invalid} invalid\n`);
    }
    exit.set(invalid ? EXIT_INVALID : EXIT_OK);
  });
}

/** Each diagnostic, each decoder warning, then the verdict, one line each. */
function printText(file: string, r: ValidationResult): void {
  const c = outColor();
  const severity = (s: string): string => (s === 'error' ? c.red.bold(s) : c.yellow(s));
  let shown = false;
  for (const d of r.diagnostics) {
    printStdout(
      `${d.channel ?? file}: ${c.dim(`at 0x${d.offset.toString(16)}`)}: ${d.path ? c.bold(d.path) + ': ' : ''}${severity(d.severity)} ${c.cyan(`[${d.rule}]`)} ${d.message}\n`,
    );
    // the first error's bytes (later ones often follow from it)
    if (!shown && d.severity === 'error') {
      printStdout(hexContext(d.channel ?? file, d.offset, c));
      shown = true;
    }
  }
  for (const w of r.warnings)
    printStdout(
      `${file}: ${c.dim(`at 0x${w.offset.toString(16)}`)}: ${w.path ? c.bold(w.path) + ': ' : ''}${c.yellow('warning')} (decoder) ${w.message}\n`,
    );
  printStdout(`${file}: ${r.valid ? c.green('valid') : c.red.bold('INVALID')} (${r.diagnostics.length} diagnostics)\n`);
}
