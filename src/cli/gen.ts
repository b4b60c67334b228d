import type { Command } from 'commander';
import { generate, readScenario, writeGenerated } from '../app/gen.js';

export function registerGen(program: Command): void {
  program
    .command('gen')
    .description(
      'reference save engine: write the stream QEMU would for a scenario (VFIO devices, multifd, capabilities)',
    )
    .argument('<scenario>', 'scenario JSON (see src/generator/scenario.ts)')
    .requiredOption('-o, --output <file>', 'main-channel stream to write (- = stdout)')
    .option('--multifd-dir <dir>', 'where multifd channels go (<name>.multifd<N>.bin); default: next to the output')
    .action((path: string, o: { output: string; multifdDir?: string }) => {
      const written = writeGenerated(generate(readScenario(path)), o.output, o.multifdDir);
      // what was written, so a script knows the channel files' names
      for (const p of written) process.stderr.write(`wrote ${p}\n`);
    });
}
