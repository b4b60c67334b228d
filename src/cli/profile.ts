import type { Command } from 'commander';
import { readProfile } from '../app/profile.js';
import { TextOut } from './output.js';
import { withExamples } from './common.js';

export function registerProfile(program: Command): void {
  const cmd = program
    .command('profile')
    .description(
      'write the destination profile a stream implies (machine type, UUID, RAMBlocks, devices and their layouts), for validate --profile',
    )
    .argument('<reference>', 'a stream the destination is known to accept (or a profile JSON, checked and rewritten)')
    .option('-o, --output <file>', 'write here instead of stdout');
  withExamples(cmd, [
    'migstream profile fixtures/real/qemu-7.2/pc-paused.mig -o dest.json',
    'migstream validate fixtures/real/qemu-7.2/pc-dirty-iterations.mig --profile dest.json   # exit 1: 32 MiB of RAM where dest has 16',
  ]).action((ref: string, o: { output?: string }) => {
    const p = readProfile(ref);
    const out = new TextOut(o.output);
    try {
      out.write(JSON.stringify(p, null, 2) + '\n');
    } finally {
      out.close();
    }
  });
}
