/**
 * Mutation fuzzing of loaders: mutated seeds go to the reference loader in-process
 * ("builtin") or to a command such as a QEMU started with -incoming ("cmd:..."). A loader
 * may accept or reject an input; crashing, hanging or failing with an internal error is a
 * finding.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { makeDirs } from '../io/make-dirs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMainStream } from '../codec/open.js';
import type { MainRecord } from '../model/records.js';
import type { LoadOptions } from '../loader/load.js';
import { StreamError } from '../model/errors.js';
import { BufferSource } from '../io/source.js';
import { mutate, Prng, ReusedMutantBuffer } from './mutators.js';
import { ResumableSeed } from './resume.js';

export type FuzzTarget = { kind: 'builtin' } | { kind: 'cmd'; command: string };

export interface FuzzOptions {
  runs: number;
  seed: number;
  target: FuzzTarget;
  /** per run, for commands; for the builtin target a run over it is reported as a hang */
  timeoutMs: number;
  load: LoadOptions;
  /** where findings are written (the mutated stream and what was done) */
  outDir?: string;
  /**
   * cmd targets: an exit status that means "the load did not complete" (bin/qemu-load's 3:
   * QEMU's destination waits forever on some broken streams). Such a run is a hang.
   */
  hangExitCode?: number;
}

export type Outcome = 'accepted' | 'rejected' | 'crash' | 'hang' | 'internal-error';

export interface FuzzFinding {
  run: number;
  seedFile: string;
  mutator: string;
  what: string;
  outcome: Outcome;
  detail: string;
  file?: string;
  /** how many runs ended the same way (outcome and detail): a finding is kept once */
  count: number;
}

export interface FuzzReport {
  runs: number;
  outcomes: Record<Outcome, number>;
  /** distinct findings, in the order they were first seen */
  findings: FuzzFinding[];
  elapsedMs: number;
  execsPerSecond: number;
}

/** A cmd target that does not accept the unmutated seeds would make every finding meaningless. */
export class TargetRejectsSeedError extends Error {
  constructor(
    readonly seed: string,
    readonly outcome: Outcome,
    readonly detail: string,
  ) {
    super(
      `the target does not accept the unmutated seed ${seed} (${outcome}${detail ? `: ${detail}` : ''}): check its command, QEMU arguments and capabilities first`,
    );
    this.name = 'TargetRejectsSeedError';
  }
}

export interface FuzzSeed {
  name: string;
  bytes: Uint8Array;
}

function decodeSeed(seed: FuzzSeed): MainRecord[] {
  const s = openMainStream(new BufferSource(seed.bytes, seed.name), { copyData: false });
  const out: MainRecord[] = [];
  // keep positions only: payload views are not needed by the mutators
  for (const r of s.records()) out.push({ ...r, ...('data' in r && r.data ? { data: r.data.subarray(0, 0) } : {}) });
  return out;
}

function runBuiltin(seed: ResumableSeed, bytes: Uint8Array): { outcome: Outcome; detail: string } {
  try {
    const r = seed.judge(bytes);
    return r.valid
      ? { outcome: 'accepted', detail: '' }
      : { outcome: 'rejected', detail: r.diagnostics[0]?.rule ?? '' };
  } catch (e) {
    if (e instanceof StreamError) return { outcome: 'rejected', detail: e.code };
    return { outcome: 'internal-error', detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

function runCommand(
  file: string,
  command: string,
  timeoutMs: number,
  hangExitCode: number | undefined,
): { outcome: Outcome; detail: string } {
  let cmd = command.includes('{}') ? command.split('{}').join(shellQuote(file)) : `${command} ${shellQuote(file)}`;
  // a simple command replaces the shell, so a timeout kills the loader itself, not only sh
  if (!/[;&|()`$<>]/.test(command)) cmd = `exec ${cmd}`;
  const r = spawnSync('/bin/sh', ['-c', cmd], {
    timeout: timeoutMs,
    stdio: ['ignore', 'ignore', 'pipe'],
    killSignal: 'SIGKILL',
  });
  // null when the command could not be started at all (spawnSync's types say otherwise)
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  const stderr = r.stderr?.toString('utf8').trim().split('\n').slice(-1)[0] ?? '';
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT')
    return { outcome: 'hang', detail: `no exit within ${timeoutMs} ms` };
  if (r.signal) return { outcome: 'crash', detail: `killed by ${r.signal}${stderr ? `: ${stderr}` : ''}` };
  // a shell reports a child killed by signal N as exit status 128 + N
  if (r.status !== null && r.status > 128 && r.status < 160)
    return {
      outcome: 'crash',
      detail: `exit status ${r.status} (signal ${r.status - 128})${stderr ? `: ${stderr}` : ''}`,
    };
  if (r.status === 127 || r.status === 126)
    return {
      outcome: 'rejected',
      detail: `exit status ${r.status} (the command could not be run)${stderr ? `: ${stderr}` : ''}`,
    };
  if (hangExitCode !== undefined && r.status === hangExitCode)
    return {
      outcome: 'hang',
      detail: `exit status ${r.status} (the load did not complete)${stderr ? `: ${stderr}` : ''}`,
    };
  return r.status === 0 ? { outcome: 'accepted', detail: '' } : { outcome: 'rejected', detail: stderr };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `onProgress`: after each run, the runs done and the distinct findings so far. */
export function fuzz(
  seeds: FuzzSeed[],
  opts: FuzzOptions,
  onProgress?: (done: number, findings: number) => void,
): FuzzReport {
  const rng = new Prng(opts.seed);
  const decoded = seeds.map((s) => ({
    seed: s,
    records: decodeSeed(s),
    // the reference loader reads each mutant from the last checkpoint before its first change
    resumable: opts.target.kind === 'builtin' ? new ResumableSeed(s.bytes, s.name, opts.load) : undefined,
  }));
  const report: FuzzReport = {
    runs: 0,
    outcomes: { accepted: 0, rejected: 0, crash: 0, hang: 0, 'internal-error': 0 },
    findings: [],
    elapsedMs: 0,
    execsPerSecond: 0,
  };
  const work = opts.target.kind === 'cmd' ? mkdtempSync(join(tmpdir(), 'migstream-fuzz-')) : undefined;
  if (opts.outDir) makeDirs(opts.outDir);
  const seen = new Map<string, FuzzFinding>();
  // every mutant is built in this one buffer: each is judged (or written out) before the next
  const mutants = new ReusedMutantBuffer();
  const started = Date.now();
  try {
    if (opts.target.kind === 'cmd') {
      // the unmutated seeds first: a target that refuses them judges nothing
      for (const { seed } of decoded) {
        const file = join(work!, 'input.mig');
        writeFileSync(file, seed.bytes);
        const res = runCommand(file, opts.target.command, opts.timeoutMs, opts.hangExitCode);
        if (res.outcome !== 'accepted') throw new TargetRejectsSeedError(seed.name, res.outcome, res.detail);
      }
    }
    for (let run = 0; run < opts.runs; run++) {
      const { seed, records, resumable } = rng.pick(decoded);
      const m = mutate(seed.bytes, records, rng, mutants);
      const t0 = Date.now();
      let res: { outcome: Outcome; detail: string };
      if (opts.target.kind === 'builtin') {
        res = runBuiltin(resumable!, m.bytes);
        if (Date.now() - t0 > opts.timeoutMs && res.outcome !== 'internal-error')
          res = { outcome: 'hang', detail: `took ${Date.now() - t0} ms` };
      } else {
        const file = join(work!, 'input.mig');
        writeFileSync(file, m.bytes);
        res = runCommand(file, opts.target.command, opts.timeoutMs, opts.hangExitCode);
      }
      report.runs++;
      report.outcomes[res.outcome]++;
      if (res.outcome === 'crash' || res.outcome === 'hang' || res.outcome === 'internal-error') {
        const key = `${res.outcome}\0${res.detail}`;
        const again = seen.get(key);
        if (again) {
          again.count++;
          onProgress?.(run + 1, report.findings.length);
          continue;
        }
        const finding: FuzzFinding = {
          run,
          seedFile: seed.name,
          mutator: m.mutator,
          what: m.what,
          outcome: res.outcome,
          detail: res.detail,
          count: 1,
        };
        seen.set(key, finding);
        if (opts.outDir) {
          finding.file = join(opts.outDir, `finding-${run}.mig`);
          writeFileSync(finding.file, m.bytes);
          writeFileSync(`${finding.file}.json`, JSON.stringify(finding, null, 2) + '\n');
        }
        report.findings.push(finding);
      }
      onProgress?.(run + 1, report.findings.length);
    }
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
  report.elapsedMs = Date.now() - started;
  report.execsPerSecond = report.elapsedMs > 0 ? Math.round((report.runs * 1000) / report.elapsedMs) : report.runs;
  return report;
}
