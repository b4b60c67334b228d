import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { encodeRecords } from '../codec/open.js';
import { UsageError } from '../model/errors.js';
import { readIr } from '../formats/ir.js';
import { FileSink } from '../io/sink.js';
import { FileSource } from '../io/source.js';
import { setExitCode } from './errors.js';

export function registerEncode(program: Command): void {
  program
    .command('encode')
    .description('write the stream an IR document (dump --format ir) describes')
    .argument('<ir>', 'IR JSON file')
    .requiredOption('-o, --output <file>', 'stream file to write (- for stdout)')
    .option('--source <file>', 'input file for payloads the IR refers to (default: the one it names)')
    .action((irPath: string, o: { output: string; source?: string }) => {
      let src: FileSource | undefined;
      let ir;
      try {
        ir = readIr(irPath, (h) => {
          const candidates = o.source ? [o.source] : [h.source, resolve(dirname(irPath), h.source)];
          const found = candidates.find((p) => p !== '-' && existsSync(p));
          src = found ? new FileSource(found) : undefined;
          return src;
        });
      } catch (e) {
        throw new UsageError(`cannot read IR ${irPath}: ${(e as Error).message}`);
      }
      const sink = new FileSink(o.output);
      try {
        encodeRecords(ir.records, sink);
      } catch (e) {
        throw new UsageError(`cannot encode ${irPath}: ${(e as Error).message}`);
      } finally {
        sink.close();
        src?.close();
      }
      // the IR of an invalid stream: what was decoded is written, and the stream is still invalid
      const err = ir.trailer().error as { offset?: number; expected?: string; found?: string } | undefined;
      if (err) {
        process.stderr.write(
          `migstream: invalid stream: the IR records a decode error at 0x${(err.offset ?? 0).toString(16)}: expected ${err.expected}, found ${err.found}; wrote what was decoded before it\n`,
        );
        setExitCode(1);
      }
    });
}
