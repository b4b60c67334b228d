/**
 * Color for each output stream, decided the way users expect: off with --no-color or a
 * non-empty NO_COLOR (no-color.org), on at FORCE_COLOR's level, otherwise on only when that
 * stream is a terminal that shows color (chalk's detection for stdout and for stderr).
 */
import { Chalk, supportsColor, supportsColorStderr, type ChalkInstance } from 'chalk';

type Level = 0 | 1 | 2 | 3;

let noColorFlag = false;

/** main() removes --no-color from the arguments (any command takes it) and says so here. */
export function setNoColor(on: boolean): void {
  noColorFlag = on;
  stdoutChalk = undefined;
  stderrChalk = undefined;
}

export function colorLevel(stream: 'stdout' | 'stderr', env: NodeJS.ProcessEnv = process.env): Level {
  if (noColorFlag || (env.NO_COLOR !== undefined && env.NO_COLOR !== '')) return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') {
    if (force === '0' || force === 'false') return 0;
    const n = Number(force);
    return n === 2 || n === 3 ? n : 1;
  }
  const s = stream === 'stdout' ? supportsColor : supportsColorStderr;
  return s ? s.level : 0;
}

let stdoutChalk: ChalkInstance | undefined;
let stderrChalk: ChalkInstance | undefined;

/** Colors for text written to stdout. */
export function outColor(): ChalkInstance {
  return (stdoutChalk ??= new Chalk({ level: colorLevel('stdout') }));
}

/** Colors for text written to stderr. */
export function errColor(): ChalkInstance {
  return (stderrChalk ??= new Chalk({ level: colorLevel('stderr') }));
}
