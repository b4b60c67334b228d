import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { generate, readScenario, writeGenerated } from '../app/gen.js';
import { generateModelFile, isModelDocument } from '../app/model.js';

/** A model (format "migstream-model") or a VFIO scenario? Unreadable files are left to the reader's own error. */
function looksLikeModel(path: string): boolean {
  try {
    return isModelDocument(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return false;
  }
}

export function registerGen(program: Command): void {
  program
    .command('gen')
    .description(
      'reference save engine: write the stream QEMU would for a machine model (from `migstream model`) or a VFIO scenario',
    )
    .argument('<model>', 'machine model JSON (format "migstream-model"), or a VFIO scenario JSON')
    .requiredOption('-o, --output <file>', 'main-channel stream to write (- = stdout)')
    .option('--multifd-dir <dir>', 'where multifd channels go (<name>.multifd<N>.bin); default: next to the output')
    .addHelpText(
      'after',
      '\nExamples:\n  migstream model fixtures/real/qemu-7.2/pc-paused.mig -o pc.json\n  migstream gen pc.json -o pc.mig\n  migstream gen fixtures/vfio/v1-7.2.scenario.json -o v1.mig',
    )
    .action((path: string, o: { output: string; multifdDir?: string }) => {
      if (looksLikeModel(path)) {
        for (const p of generateModelFile(path, o.output, o.multifdDir)) process.stderr.write(`wrote ${p}\n`);
        return;
      }
      const written = writeGenerated(generate(readScenario(path)), o.output, o.multifdDir);
      // what was written, so a script knows the channel files' names
      for (const p of written) process.stderr.write(`wrote ${p}\n`);
    });
}
