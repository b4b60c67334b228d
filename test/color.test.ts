import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';
import { hasScript, MIGSTREAM, onTerminal, terminalEnv } from './terminal.js';

/**
 * Color as a terminal user meets it: the command runs under a pseudo-terminal (util-linux
 * `script`), so stdout and stderr are TTYs; NO_COLOR, --no-color and a pipe turn it off,
 * FORCE_COLOR turns it on in a pipe.
 */
const BAD = join(ROOT, 'fixtures', 'vfio', 'bad-setup-eos.mig');
const ESC = '\u001b[';

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
    const plain = spawnSync(MIGSTREAM, ['validate', BAD], { encoding: 'utf8', env: terminalEnv({}) });
    expect(plain.stdout).toContain('error [vfio/setup-eos]');
    expect(plain.stdout).not.toContain(ESC);
    const forced = spawnSync(MIGSTREAM, ['validate', BAD], {
      encoding: 'utf8',
      env: terminalEnv({ FORCE_COLOR: '1' }),
    });
    expect(forced.stdout).toContain(`${ESC}36m[vfio/setup-eos]`);
  });
});
