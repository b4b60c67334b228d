import { printStdout } from './output.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../model/errors.js';
import { NEWEST_QEMU } from '../loader/load.js';
import { validateFile } from '../app/validate.js';
import { collectValue, streamOptions } from './common.js';
import { EXIT_INVALID, EXIT_OK, type ExitStatus } from './errors.js';

interface ValidateOptions {
  capability: string[];
  qemuVersion?: string;
  strict?: boolean;
  format: 'text' | 'json';
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
}

export function registerValidate(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('validate')
    .description("run the reference loader (QEMU's destination rules) over a stream: exit 0 valid, 1 invalid")
    .argument('<file>', 'main-channel stream, or - for stdin')
    .option(
      '--qemu-version <x.y>',
      `destination QEMU release (default: the one the stream's machine type names, pc-q35-7.2: 7.2; else ${NEWEST_QEMU})`,
    )
    .addOption(
      new Option('--format <format>', 'diagnostics as text lines or one JSON document')
        .choices(['text', 'json'])
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
      ).argParser((v) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < 1 || n > 255) throw new InvalidArgumentError('a number from 1 to 255');
        return n;
      }),
    )
    .option('--multifd <file>', 'a multifd channel capture, repeatable (in any order)', collectValue, [])
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
  streamOptions(cmd).action((file: string, o: ValidateOptions) => {
    if (o.qemuVersion !== undefined && !/^\d+\.\d+$/.test(o.qemuVersion))
      throw new UsageError(`--qemu-version takes X.Y (got ${JSON.stringify(o.qemuVersion)})`);
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
    });
    if (o.format === 'json') {
      printStdout(
        JSON.stringify({ file, valid: r.valid, diagnostics: r.diagnostics, warnings: r.warnings }, null, 2) + '\n',
      );
    } else {
      for (const d of r.diagnostics) {
        printStdout(
          `${d.channel ?? file}: at 0x${d.offset.toString(16)}: ${d.path ? d.path + ': ' : ''}${d.severity} [${d.rule}] ${d.message}\n`,
        );
      }
      printStdout(`${file}: ${r.valid ? 'valid' : 'INVALID'} (${r.diagnostics.length} diagnostics)\n`);
    }
    exit.set(r.valid ? EXIT_OK : EXIT_INVALID);
  });
}
