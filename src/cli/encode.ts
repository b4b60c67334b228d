import type { Command } from 'commander';
import { encodeIrFile } from '../app/encode.js';
import { EXIT_INVALID, type ExitStatus } from './errors.js';
import { withExamples } from './common.js';
import { withReadProgress } from './progress.js';

export function registerEncode(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('encode')
    .description('write the stream an IR document (dump --format ir) describes')
    .argument('<ir>', 'IR JSON file')
    .requiredOption('-o, --output <file>', 'stream file to write (- for stdout)')
    .option('--source <file>', 'input file for payloads the IR refers to (default: the one it names)');
  withExamples(cmd, [
    'migstream dump fixtures/real/qemu-7.2/pc-paused.mig --format ir -o pc.ir.json',
    'migstream encode pc.ir.json -o pc.mig && cmp pc.mig fixtures/real/qemu-7.2/pc-paused.mig',
    'migstream encode pc.ir.json -o - | wc -c',
  ]).action((irPath: string, o: { output: string; source?: string }) => {
    // the IR of an invalid stream: what was decoded is written, and the stream is still invalid
    const err = withReadProgress(o.output === '-', () => encodeIrFile(irPath, o.output, o.source)).recordedError;
    if (err) {
      process.stderr.write(
        `migstream: invalid stream: the IR records a decode error at 0x${(err.offset ?? 0).toString(16)}: expected ${err.expected}, found ${err.found}; wrote what was decoded before it\n`,
      );
      exit.set(EXIT_INVALID);
    }
  });
}
