import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderRulesDoc } from '../src/formats/rules-doc.js';
import { ROOT } from './helpers.js';

describe('docs/validate-rules.md', () => {
  it('is the rule catalogue (grammar/rules.ts) as `npm run docs` renders it', () => {
    expect(readFileSync(join(ROOT, 'docs', 'validate-rules.md'), 'utf8')).toBe(renderRulesDoc());
  });
  it('names every rule once', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'validate-rules.md'), 'utf8');
    const ids = [...doc.matchAll(/^\| `([a-z-]+\/[a-z0-9-]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThan(70);
  });
});

describe('README samples', () => {
  // the block after "<!-- samples: ... -->": "$ " lines are commands, the lines up to the next are their stdout
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- samples:[^\n]*-->\n```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const samples = block.split(/^\$ /m).filter((x) => x.length > 0);

  it('there are samples to check', () => {
    expect(samples.length).toBeGreaterThanOrEqual(2);
  });

  for (const sample of samples) {
    const [command = '', ...rest] = sample.split('\n');
    it(`${command}: prints what the README shows`, () => {
      const r = spawnSync('bash', ['-c', command], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', PATH: `${join(ROOT, 'bin')}:${process.env['PATH'] ?? ''}` },
      });
      expect(r.stdout).toBe(rest.join('\n'));
    });
  }
});

describe('README library example', () => {
  // the ```js block after "<!-- library-example: ... -->", and the plain block after it: what it prints
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- library-example:[^\n]*-->\n```js\n([\s\S]*?)```\n\nIt prints:\n\n```\n([\s\S]*?)```/.exec(readme);

  it("runs as a program that imports 'migstream' and prints what the README shows", () => {
    expect(m).not.toBeNull();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', m?.[1] ?? ''], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(m?.[2]);
  });
});

describe('API reference (TypeDoc)', () => {
  it('builds from src/index.ts with every export and what it references documented', () => {
    // typedoc.json: validation.notExported and notDocumented; a warning fails the build here
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none', '--treatWarningsAsErrors'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);
});
