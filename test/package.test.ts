import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REAL, ROOT, tempDir } from './helpers.js';

/**
 * The package as users get it: `npm pack`, installed into an empty project (its dependencies
 * from npm's cache where `npm ci` left them, else the registry `npm ci` used), then its CLI
 * and `import('migstream')`.
 */
describe('the packed tarball, installed', () => {
  it('holds only what users need, installs, and runs as a CLI and as a library', () => {
    const work = tempDir('migstream-pack-');
    // --ignore-scripts: `npm test` built dist/ already; a rebuild by `prepare` would rewrite it
    // under the suites that run bin/migstream beside this one
    const pack = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
    expect(pack.status, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
    }[];
    const files = info?.files.map((f) => f.path) ?? [];
    // compiled code with its declarations, the two commands, the schemas, the rule catalogue
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    expect(files).toContain('bin/migstream');
    expect(files).toContain('schemas/migstream-model.schema.json');
    expect(files).toContain('docs/validate-rules.md');
    expect(files).toContain('docs/qcow2.md');
    // and nothing of the development tree: sources, tests, fixtures, bench, helper scripts
    expect(
      files.filter((f) => /^(src|test|fixtures|grammar|bench|scripts|dist\/bench|dist\/scripts)\//.test(f)),
    ).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);

    const app = join(work, 'app');
    spawnSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module' }));
    const install = spawnSync(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(work, info?.filename ?? '')],
      { cwd: app, encoding: 'utf8' },
    );
    expect(install.status, install.stderr).toBe(0);
    expect(readdirSync(join(app, 'node_modules', 'migstream'))).not.toContain('src');

    const paused = join(REAL, 'qemu-7.2', 'pc-paused.mig');
    const cli = spawnSync(join(app, 'node_modules', '.bin', 'migstream'), ['validate', paused], { encoding: 'utf8' });
    expect(cli.stdout).toBe(`${paused}: valid (0 diagnostics)\n`);
    const analyze = spawnSync(join(app, 'node_modules', '.bin', 'analyze-migration'), ['-f', paused, '-d', 'desc'], {
      encoding: 'utf8',
    });
    expect(analyze.status).toBe(0);
    expect(JSON.parse(analyze.stdout)).toHaveProperty('devices');
    // the code caches made at build time still count once npm has installed them (npm gives every file one time)
    const installed = join(app, 'node_modules', 'migstream');
    const cached = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { loadBundle } from ${JSON.stringify(join(installed, 'dist', 'src', 'cli', 'code-cache.js'))};\n` +
          `import { prepareHeap } from ${JSON.stringify(join(installed, 'dist', 'src', 'cli', 'dispatch.js'))};\n` +
          `prepareHeap('validate');\n` +
          `process.stdout.write(String(loadBundle(${JSON.stringify(join(installed, 'dist', 'cli', 'command-validate.cjs'))}).usedCache));`,
      ],
      { encoding: 'utf8' },
    );
    expect(cached.stdout, cached.stderr).toBe('true');

    const lib = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import('migstream');
         const r = m.validateFile(${JSON.stringify(paused)}, { capabilities: [], multifd: [] });
         const d = m.diffFiles(${JSON.stringify(paused)}, ${JSON.stringify(paused)});
         console.log(JSON.stringify({ valid: r.valid, same: d.same, rules: m.RULES.length > 50 }));`,
      ],
      { cwd: app, encoding: 'utf8' },
    );
    expect(lib.stderr).toBe('');
    expect(JSON.parse(lib.stdout)).toEqual({ valid: true, same: true, rules: true });
  }, 180_000);
});
