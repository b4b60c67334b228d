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
