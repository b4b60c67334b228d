import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REAL, ROOT } from './helpers.js';
import { MIGSTREAM_VERSION } from '../src/model/version.js';

/**
 * migstream as a library, the way a program imports it: `import('migstream')` by package name
 * (Node resolves a package's own name through its "exports"), in a separate Node process that
 * runs the compiled dist/ as an installed package would.
 */
function node(script: string) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("import('migstream')", () => {
  it('validates, decodes and reports typed errors as the command line does', () => {
    const paused = join(REAL, 'qemu-7.2', 'pc-paused.mig');
    const r = node(`
      import { validateFile, openMainFile, StreamError, UsageError, RULES } from 'migstream';
      const v = validateFile(${JSON.stringify(paused)}, { capabilities: [], multifd: [] });
      const s = openMainFile(${JSON.stringify(paused)});
      const kinds = {};
      for (const rec of s.records()) kinds[rec.kind] = (kinds[rec.kind] ?? 0) + 1;
      s.close();
      let missing;
      try { validateFile('/nonexistent.mig', { capabilities: [], multifd: [] }); } catch (e) { missing = e instanceof UsageError && e.message; }
      console.log(JSON.stringify({ valid: v.valid, diagnostics: v.diagnostics.length, kinds, missing,
        streamError: typeof StreamError, rules: RULES.length }));
    `);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(true);
    expect(out.diagnostics).toBe(0);
    // fixtures/real/index.json census of 7.2 pc-paused: FULL×30 + ram START/PART/END, FOOTER×33, one configuration
    expect(out.kinds.section).toBe(33);
    expect(out.kinds.section_footer).toBe(33);
    expect(out.kinds.configuration).toBe(1);
    expect(out.missing).toBe('cannot open /nonexistent.mig: no such file or directory');
    expect(out.streamError).toBe('function');
    expect(out.rules).toBeGreaterThan(80);
  });
  it('ships its declarations where package.json says', () => {
    expect(existsSync(join(ROOT, 'dist', 'src', 'index.d.ts'))).toBe(true);
  });

  it('reports the release package.json names (--version, SARIF and JUnit reports)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(MIGSTREAM_VERSION).toBe(pkg.version);
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'migstream'), '--version'], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
