/**
 * A progress bar on stderr (cli-progress) for work that takes more than a second: bytes or
 * runs, rate, ETA. Only where a person watches: stderr is a terminal, --quiet was not given,
 * and the command's own output is not streaming to that same terminal. It is cleared when the
 * work ends, so what remains on screen is the command's output.
 *
 * cli-progress redraws from a timer, which a synchronous decode loop never yields to; its
 * synchronousUpdate option redraws from update() instead, at most fps times a second.
 */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';

/** cli-progress is loaded when a bar is first drawn: most runs never draw one (start-up time). */
const loadCliProgress = (): typeof cliProgressModule =>
  createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;
import { onWorkProgress, type WorkProgress } from '../app/progress.js';

/** How long work runs before a bar appears; MIGSTREAM_PROGRESS_DELAY_MS changes it (the tests use 0). */
function delayMs(): number {
  const v = Number(process.env.MIGSTREAM_PROGRESS_DELAY_MS);
  return Number.isFinite(v) && v >= 0 ? v : 1000;
}

let quiet = false;

/** main() takes --quiet (any command) out of the arguments and says so here. */
export function setQuiet(on: boolean): void {
  quiet = on;
}

/** Whether a bar may be drawn: `streamsToStdout` when the command writes its output while it works. */
export function progressWanted(streamsToStdout: boolean): boolean {
  return !quiet && process.stderr.isTTY && !(streamsToStdout && process.stdout.isTTY);
}

type Unit = 'bytes' | 'runs';

export class ProgressBar {
  private bar: cliProgressModule.SingleBar | undefined;
  private readonly started = Date.now();
  private readonly delay = delayMs();

  constructor(private readonly unit: Unit) {}

  update(done: number, total: number | undefined, detail: string): void {
    const elapsed = (Date.now() - this.started) / 1000;
    const perSecond = elapsed > 0 ? done / elapsed : 0;
    const payload = {
      doneText: this.amount(done),
      totalText: total === undefined ? '?' : this.amount(total),
      rate: `${this.amount(perSecond)}/s`,
      // the time left at the rate so far (cli-progress's own estimate prints "NULL" cut short at the end)
      timeLeft: total === undefined || perSecond === 0 ? '?' : `${Math.ceil(Math.max(0, total - done) / perSecond)}s`,
      detail,
    };
    if (!this.bar) {
      if (Date.now() - this.started < this.delay) return;
      const cliProgress = loadCliProgress();
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format:
            total === undefined
              ? '{doneText} | {rate} | {detail}'
              : '{bar} {percentage}% | {doneText} of {totalText} | {rate} | ETA {timeLeft} | {detail}',
          hideCursor: true,
          clearOnComplete: true,
          synchronousUpdate: true,
          fps: 10,
          barsize: 24,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total ?? 0, done, payload);
      return;
    }
    if (total !== undefined) this.bar.setTotal(total);
    this.bar.update(done, payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  private amount(n: number): string {
    return this.unit === 'runs' ? String(Math.round(n)) : binaryAmount(n);
  }
}

/** Bytes in binary units, one decimal above bytes: "12.3 MiB". */
export function binaryAmount(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** Runs `work` with a byte-progress bar fed by every input the use case opens (when one is wanted). */
export function withReadProgress<T>(streamsToStdout: boolean, work: () => T): T {
  if (!progressWanted(streamsToStdout)) return work();
  const bar = new ProgressBar('bytes');
  onWorkProgress((p: WorkProgress) => bar.update(p.done, p.total, p.label));
  try {
    return work();
  } finally {
    onWorkProgress(undefined);
    bar.stop();
  }
}
