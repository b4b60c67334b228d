import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateFile } from '../src/app/validate.js';
import { junitReport, sarifReport, type FileVerdict } from '../src/formats/ci-reports.js';
import { ROOT } from './helpers.js';

/**
 * The JUnit and SARIF reports, in process and in full, of real verdicts: a valid recording,
 * two VFIO streams that break the rules fixtures/vfio/expect.json names for them (the rules
 * and offsets are also what test/ci-reports.test.ts checks against validate's JSON), and a
 * valid recording with decoder warnings. The run's clock, host and timings are fixed, and
 * one verdict carries a file name with characters XML and URIs must escape.
 * UPDATE_GOLDEN=1 rewrites the two files; review the diff.
 */
const STREAMS = [
  join('fixtures', 'real', 'qemu-7.2', 'pc-paused.mig'),
  join('fixtures', 'vfio', 'bad-config-end-flag.mig'),
  join('fixtures', 'vfio', 'bad-init-data-twice.mig'),
];

function verdicts(): FileVerdict[] {
  const real = STREAMS.map((file, i) => {
    const r = validateFile(join(ROOT, file));
    return { file, valid: r.valid, diagnostics: r.diagnostics, warnings: r.warnings, seconds: 0.125 * (i + 1) };
  });
  const broken = real[1];
  if (!broken) throw new Error('no verdict');
  // a valid stream with decoder warnings (no vmdescription: payloads kept raw), its first two
  const bare = join('fixtures', 'real', 'qemu-10.0', 'pc-suppress-vmdesc.mig');
  const r = validateFile(join(ROOT, bare));
  const warned = {
    file: bare,
    valid: r.valid,
    diagnostics: r.diagnostics,
    warnings: r.warnings.slice(0, 2),
    seconds: 0.5,
  };
  // the same verdict under a name with markup, a quote, a control character and a space
  return [...real, warned, { ...broken, file: 'odd dir/a&b<c>"\u0001\'.mig', seconds: 1 }];
}

const ctx = { version: '9.9.9-test', hostname: 'ci-host', started: new Date(Date.UTC(2026, 11, 5, 3, 4, 5)) };

function golden(name: string, text: string): void {
  const p = join(ROOT, 'test', 'golden', name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(p, text);
  expect(existsSync(p), `test/golden/${name} is missing: UPDATE_GOLDEN=1 writes it`).toBe(true);
  expect(text).toBe(readFileSync(p, 'utf8'));
}

describe('CI reports of real verdicts, whole', () => {
  it('JUnit XML', () => {
    const v = verdicts();
    expect(v.map((x) => x.valid)).toEqual([true, false, false, true, false]);
    expect(v[3]?.warnings).toHaveLength(2);
    golden('ci-reports.junit.xml', junitReport(v, ctx));
  });
  it('SARIF 2.1.0', () => {
    golden('ci-reports.sarif.json', sarifReport(verdicts(), ctx));
  });
  it('an empty host name is reported as localhost, and no verdicts make an empty suite', () => {
    const xml = junitReport([], { ...ctx, hostname: '' });
    expect(xml).toContain('hostname="localhost" tests="0" failures="0" errors="0" skipped="0" time="0.000"');
    expect(xml).toContain('<system-out></system-out>');
  });
});
