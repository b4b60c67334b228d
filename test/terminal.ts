import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

/**
 * A command as a person at a terminal runs it: under a pseudo-terminal (util-linux `script`),
 * so stdout and stderr are TTYs, TERM set and no CI variable.
 */
export const MIGSTREAM = join(ROOT, 'bin', 'migstream');
export const hasScript = spawnSync('script', ['--version']).status === 0;

export function terminalEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // a person's terminal: TERM set, not a CI job (chalk turns color off for unknown CI systems)
  const e: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...extra };
  delete e.CI;
  // CI runs with FORCE_COLOR=0 (.ci/run): each case says what it wants
  if (!('FORCE_COLOR' in extra)) delete e.FORCE_COLOR;
  if (!('NO_COLOR' in extra)) delete e.NO_COLOR;
  return e;
}

/** Run a command line (migstream's arguments, or a shell line) under a pseudo-terminal; what the terminal showed. */
export function onTerminal(args: string[] | string, extra: Record<string, string> = {}): string {
  const line = typeof args === 'string' ? args : [MIGSTREAM, ...args].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', line, '/dev/null'], {
    encoding: 'utf8',
    env: terminalEnv(extra),
    maxBuffer: 1 << 26,
  });
  return r.stdout;
}
