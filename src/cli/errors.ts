import { errColor } from './color.js';
import { CommanderError } from 'commander';
import { StreamError, UsageError } from '../model/errors.js';
import { OutputClosedError } from '../io/write-all.js';
import { ioErrorWords } from '../io/io-words.js';

/** What a shell reports for a process killed by SIGPIPE: the reader closed our output. */
export const EXIT_OUTPUT_CLOSED = 141;

export const EXIT_OK = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

/** The exit code a command's action decides on; main() makes one per run and returns it once commander is done. */
export class ExitStatus {
  code = EXIT_OK;
  set(code: number): void {
    this.code = code;
  }
}

/** One line on stderr, never a stack trace; returns the exit code the error maps to. */
export function reportError(e: unknown): number {
  if (e instanceof OutputClosedError) return EXIT_OUTPUT_CLOSED;
  if (e instanceof StreamError) {
    process.stderr.write(`${errColor().red('migstream: invalid stream')}: ${e.message}\n`);
    return EXIT_INVALID;
  }
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (e instanceof UsageError) {
    process.stderr.write(`${errColor().red('migstream')}: ${e.message}\n`);
    return EXIT_USAGE;
  }
  if (isSystemError(e)) {
    const what = e.path ? `${e.path}: ` : '';
    process.stderr.write(`${errColor().red('migstream')}: ${what}${ioErrorWords(e)} (${e.syscall})\n`);
    return EXIT_USAGE;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`${errColor().red('migstream: internal error')}: ${msg}\n`);
  if (process.env.MIGSTREAM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return EXIT_USAGE;
}

/** An error from a system call (open, read, write): it names the call and an errno code. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException & { code: string; syscall: string } {
  if (!(e instanceof Error)) return false;
  const err: NodeJS.ErrnoException = e;
  return typeof err.code === 'string' && typeof err.syscall === 'string';
}

export function warnLine(text: string): void {
  process.stderr.write(`${errColor().yellow('migstream: warning')}: ${text}\n`);
}
