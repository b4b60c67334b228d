import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../model/errors.js';
import { applyMutations } from '../engine/mutate.js';
import { save } from '../engine/save.js';
import type { Scenario } from '../engine/scenario.js';
import { encodeToBytes } from '../codec/open.js';
import { writeAllSync } from '../io/write-all.js';

export function registerGen(program: Command): void {
  program
    .command('gen')
    .description(
      'reference save engine: write the stream QEMU would for a scenario (VFIO devices, multifd, capabilities)',
    )
    .argument('<scenario>', 'scenario JSON (see src/engine/scenario.ts)')
    .requiredOption('-o, --output <file>', 'main-channel stream to write (- = stdout)')
    .option('--multifd-dir <dir>', 'where multifd channels go (<name>.multifd<N>.bin); default: next to the output')
    .action((path: string, o: { output: string; multifdDir?: string }) => {
      let scenario: Scenario;
      try {
        scenario = JSON.parse(readFileSync(path, 'utf8')) as Scenario;
      } catch (e) {
        throw new UsageError(`cannot read scenario ${path}: ${(e as Error).message}`);
      }
      const files = generate(scenario);
      if (files.multifd.length && o.output === '-' && !o.multifdDir)
        throw new UsageError('the scenario has multifd channels: with -o - give --multifd-dir DIR for them');
      const written: string[] = [];
      if (o.output === '-') writeAllSync(1, files.main);
      else {
        writeFileSync(o.output, files.main);
        written.push(o.output);
      }
      const stem = o.output === '-' ? 'stdout' : basename(o.output).replace(/\.mig$/, '');
      files.multifd.forEach((b, i) => {
        const p = join(o.multifdDir ?? dirname(o.output), `${stem}.multifd${i}.bin`);
        writeFileSync(p, b);
        written.push(p);
      });
      // what was written, so a script knows the channel files' names
      for (const p of written) process.stderr.write(`wrote ${p}\n`);
    });
}

export function generate(s: Scenario): { main: Uint8Array; multifd: Uint8Array[] } {
  let saved = save(s);
  if (s.mutations?.length) saved = applyMutations(saved, s.mutations);
  return { main: encodeToBytes(saved.main), multifd: saved.multifd.map((c) => encodeToBytes(c)) };
}
