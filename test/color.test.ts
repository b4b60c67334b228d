import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/**
 * Color as a terminal user meets it: the command runs under a pseudo-terminal (util-linux
 * `script`), so stdout and stderr are TTYs; NO_COLOR, --no-color and a pipe turn it off,
 * FORCE_COLOR turns it on in a pipe.
 */
const MIGSTREAM = join(ROOT, 'bin', 'migstream');
const BAD = join(ROOT, 'fixtures', 'vfio', 'bad-setup-eos.mig');
const hasScript = spawnSync('script', ['--version']).status === 0;
const ESC = '\u001b[';

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  // a person's terminal: TERM set, not a CI job (chalk turns color off for unknown CI systems)
  const e: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...extra };
  delete e.CI;
  // CI runs with FORCE_COLOR=0 (.ci/run): each case says what it wants
  if (!('FORCE_COLOR' in extra)) delete e.FORCE_COLOR;
  if (!('NO_COLOR' in extra)) delete e.NO_COLOR;
  return e;
}

/** Run a command line under a pseudo-terminal; what the terminal showed. */
function onTerminal(args: string[], extra: Record<string, string> = {}): string {
  const line = [MIGSTREAM, ...args].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', env: env(extra) });
  return r.stdout;
}

describe.skipIf(!hasScript)('color on a terminal', () => {
  it('validate of a bad VFIO stream: severity, rule id, offset and verdict in color', () => {
    const out = onTerminal(['validate', BAD]);
    expect(out).toContain(`${ESC}31m${ESC}1merror`);
    expect(out).toContain(`${ESC}36m[vfio/setup-eos]`);
    expect(out).toContain(`${ESC}2mat 0x73`);
    expect(out).toContain(`${ESC}31m${ESC}1mINVALID`);
  });

  it('the error line on stderr is colored too', () => {
    const out = onTerminal(['dump', join(ROOT, 'README.md')]);
    expect(out).toContain(`${ESC}31mmigstream: invalid stream`);
  });

  it('NO_COLOR=1 and --no-color (before or after the command) turn it off', () => {
    for (const out of [
      onTerminal(['validate', BAD], { NO_COLOR: '1' }),
      onTerminal(['validate', '--no-color', BAD]),
      onTerminal(['--no-color', 'validate', BAD]),
    ]) {
      expect(out).toContain('error [vfio/setup-eos]');
      expect(out).not.toContain(ESC);
    }
  });
});

describe('color in a pipe', () => {
  it('none by default; FORCE_COLOR=1 forces it', () => {
    const plain = spawnSync(MIGSTREAM, ['validate', BAD], { encoding: 'utf8', env: env({}) });
    expect(plain.stdout).toContain('error [vfio/setup-eos]');
    expect(plain.stdout).not.toContain(ESC);
    const forced = spawnSync(MIGSTREAM, ['validate', BAD], { encoding: 'utf8', env: env({ FORCE_COLOR: '1' }) });
    expect(forced.stdout).toContain(`${ESC}36m[vfio/setup-eos]`);
  });
});
