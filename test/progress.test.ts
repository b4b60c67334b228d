import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { writeRamStream } from '../src/generator/synthetic-ram.js';
import { REAL, tempDir } from './helpers.js';
import { hasScript, MIGSTREAM, onTerminal, terminalEnv } from './terminal.js';

/**
 * The progress bar as a person sees it: under a pseudo-terminal, on stderr, for work over a
 * second (MIGSTREAM_PROGRESS_DELAY_MS=0 here, so that a short run shows it), cleared at the
 * end; never in a pipe, with --quiet, or over output streaming to the same terminal.
 */
const dir = tempDir('migstream-progress-');
const big = join(dir, 'ram-32m.mig');
writeRamStream(big, 32 << 20);
const now = { MIGSTREAM_PROGRESS_DELAY_MS: '0', NO_COLOR: '1' };
/** the bar's text: "<bar> 37% | 12.0 MiB of 32.1 MiB | 80.1 MiB/s | ETA 1s | FILE" (32 MiB of pages and their headers) */
const BAR = /(\d+)% \| ([\d.]+ [KMG]?i?B) of 32\.1 MiB \| [\d.]+ [KMG]?i?B\/s \| ETA \d+s \| /g;

describe.skipIf(!hasScript)('progress on a terminal', () => {
  it('validate: the bar climbs to 100% of the file, is cleared, and the verdict follows', () => {
    const out = onTerminal(['validate', big], now);
    const shown = [...out.matchAll(BAR)].map((m) => Number(m[1]));
    // validate reads 32 MiB in a few tens of ms: the bar (redrawn ten times a second) may be drawn only at its end
    expect(shown.length).toBeGreaterThanOrEqual(1);
    expect(shown).toEqual([...shown].sort((a, b) => a - b));
    expect(shown.at(-1)).toBe(100);
    expect(out).toContain(big);
    // cleared (erase line) before the verdict is printed
    const verdict = out.indexOf(`${big}: valid`);
    expect(verdict).toBeGreaterThan(out.lastIndexOf('100% |'));
    expect(out.slice(out.lastIndexOf('100% |'), verdict)).toContain('\u001b[2K');
  });

  it('a slower input (a gzip capture, inflated as it is read) shows the amount climbing to the whole stream', () => {
    const gz = join(dir, 'ram-32m.mig.gz');
    writeFileSync(gz, gzipSync(readFileSync(big), { level: 1 }));
    const out = onTerminal(['validate', gz], now);
    // a capture's inflated size is not known before its end: the bar shows the stream's bytes so far and the rate
    const unit = { B: 1, KiB: 1 << 10, MiB: 1 << 20, GiB: 1 << 30 } as Record<string, number>;
    const shown = [...out.matchAll(/([\d.]+) (B|KiB|MiB|GiB) \| [\d.]+ [KMG]?i?B\/s \| /g)].map(
      (m) => Number(m[1]) * (unit[m[2] ?? ''] ?? NaN),
    );
    expect(new Set(shown).size).toBeGreaterThanOrEqual(2);
    expect(shown).toEqual([...shown].sort((a, b) => a - b));
    expect(out).toMatch(/32\.1 MiB \| [\d.]+ [KMG]?i?B\/s \| /);
    expect(out).toContain(`${gz}: valid`);
  });

  it('encode counts the bytes written against the size of the stream the IR came from', () => {
    const ir = join(dir, 'big.ir');
    expect(spawnSync(MIGSTREAM, ['dump', '--format', 'ir', big, '-o', ir]).status).toBe(0);
    const out = onTerminal(['encode', ir, '-o', join(dir, 'again.mig')], now);
    expect([...out.matchAll(BAR)].map((m) => Number(m[1])).at(-1)).toBe(100);
  });

  it('fuzz shows runs of the total and the findings so far', () => {
    const out = onTerminal(['fuzz', join(REAL, 'qemu-7.2', 'pc-paused.mig'), '--runs', '40'], now);
    expect(out).toMatch(/\d+% \| \d+ of 40 \| \d+\/s \| ETA \d+s \| \d+ findings/);
    expect(out).toContain('40 runs in');
  });

  it('none with --quiet or -q, and none for work that ends before the delay', () => {
    for (const out of [
      onTerminal(['validate', '--quiet', big], now),
      onTerminal(['-q', 'validate', big], now),
      // work that ends before the delay (a minute here, so that a loaded machine cannot cross it)
      onTerminal(['validate', big], { NO_COLOR: '1', MIGSTREAM_PROGRESS_DELAY_MS: '60000' }),
    ]) {
      expect(out).toContain(': valid');
      expect(out).not.toMatch(/% \|/);
    }
  });

  it('none over output streaming to the same terminal; a dump into a file gets one', () => {
    expect(onTerminal(['dump', '--format', 'summary', big], now)).not.toMatch(/% \|/);
    expect(onTerminal(['dump', '--format', 'summary', big, '-o', join(dir, 's.json')], now)).toMatch(BAR);
  });
});

describe('progress in a pipe', () => {
  it('stderr is not a terminal: nothing but the output', () => {
    const r = spawnSync(MIGSTREAM, ['validate', big], { encoding: 'utf8', env: terminalEnv(now) });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${big}: valid (0 diagnostics)\n`);
  });
});
