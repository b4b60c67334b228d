import { printStdout } from './output.js';
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { UsageError } from '../model/errors.js';
import { fuzz, TargetRejectsSeedError, type FuzzReport, type FuzzTarget } from '../fuzz/run.js';
import { EXIT_INVALID, EXIT_OK, type ExitStatus } from './errors.js';
import { collectCapability, withExamples } from './common.js';
import { ProgressBar, progressWanted } from './progress.js';

interface FuzzCliOptions {
  runs: string;
  seed: string;
  target: string;
  timeout: string;
  out?: string;
  capability: string[];
  qemuVersion?: string;
  format: string;
  hangExitCode: string;
}

export function registerFuzz(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('fuzz')
    .description(
      'mutation fuzzing with grammar-aware bad tags, truncations and lying lengths (exit 0 no finding, 1 findings)',
    )
    .argument('<seeds...>', 'main-channel streams to mutate')
    .option('--runs <n>', 'how many mutated inputs', '1000')
    .option('--seed <s>', 'PRNG seed (runs are reproducible)', '1')
    .option(
      '--target <target>',
      '"builtin" (the reference loader) or "cmd:COMMAND" ({} = the input file, else appended); a crash, hang or internal error is a finding',
      'builtin',
    )
    .option('--timeout <ms>', 'per run', '10000')
    .option('--out <dir>', 'write each finding (input + description) here')
    .option(
      '--capability <name>',
      'builtin target: destination capability (QEMU name), repeatable',
      collectCapability,
      [],
    )
    .option('--qemu-version <x.y>', 'builtin target: destination QEMU release (default: from the machine type)')
    .option('--format <format>', 'text or json', 'text')
    .option(
      '--hang-exit-code <n>',
      'cmd target: the exit status that means the load never completed (bin/qemu-load: 3); such a run is a hang',
      '3',
    );
  withExamples(cmd, [
    'migstream fuzz fixtures/real/qemu-7.2/pc-paused.mig --runs 200 --out findings',
    "migstream fuzz fixtures/real/qemu-7.2/pc-paused.mig --runs 3 --target 'cmd:bin/qemu-load {}'   # a real QEMU 7.2 -incoming",
  ]).action((seeds: string[], o: FuzzCliOptions) => {
    const runs = Number(o.runs);
    const seed = Number(o.seed);
    const timeoutMs = Number(o.timeout);
    if (!Number.isSafeInteger(runs) || runs < 1) throw new UsageError(`--runs takes a positive number (got ${o.runs})`);
    if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed takes an integer (got ${o.seed})`);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
      throw new UsageError(`--timeout takes milliseconds (got ${o.timeout})`);
    let target: FuzzTarget;
    if (o.target === 'builtin') target = { kind: 'builtin' };
    else if (o.target.startsWith('cmd:') && o.target.length > 4) target = { kind: 'cmd', command: o.target.slice(4) };
    else throw new UsageError(`--target takes builtin or cmd:COMMAND (got ${JSON.stringify(o.target)})`);
    const inputs = seeds.map((name) => {
      try {
        return { name, bytes: new Uint8Array(readFileSync(name)) };
      } catch (e) {
        throw new UsageError(`cannot read seed ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    });
    const hangExitCode = Number(o.hangExitCode);
    if (!Number.isSafeInteger(hangExitCode) || hangExitCode < 1 || hangExitCode > 125)
      throw new UsageError(`--hang-exit-code takes an exit status from 1 to 125 (got ${o.hangExitCode})`);
    let report: FuzzReport;
    // runs, execs/s and findings as it goes
    const bar = progressWanted(false) ? new ProgressBar('runs') : undefined;
    try {
      report = fuzz(
        inputs,
        {
          runs,
          seed,
          target,
          timeoutMs,
          outDir: o.out,
          hangExitCode,
          load: { capabilities: o.capability, qemuVersion: o.qemuVersion },
        },
        bar && ((done, findings) => bar.update(done, runs, `${findings} findings`)),
      );
    } catch (e) {
      if (e instanceof TargetRejectsSeedError) throw new UsageError(e.message);
      throw e;
    } finally {
      bar?.stop();
    }
    if (o.format === 'json') printStdout(JSON.stringify(report, null, 2) + '\n');
    else {
      for (const f of report.findings)
        printStdout(
          `run ${f.run}: ${f.outcome}: ${f.detail} (${f.mutator}: ${f.what} in ${f.seedFile})${f.count > 1 ? ` [${f.count} runs]` : ''}${f.file ? ` -> ${f.file}` : ''}\n`,
        );
      const o2 = report.outcomes;
      printStdout(
        `${report.runs} runs in ${(report.elapsedMs / 1000).toFixed(1)} s (${report.execsPerSecond} execs/s): ${o2.accepted} accepted, ${o2.rejected} rejected, ${o2.crash} crashes, ${o2.hang} hangs, ${o2['internal-error']} internal errors; ${report.findings.length} distinct findings\n`,
      );
    }
    exit.set(report.findings.length ? EXIT_INVALID : EXIT_OK);
  });
}
