import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('docs/validate-rules.md', () => {
  it('lists every rule the loader can report, and no other', () => {
    const code = sources(join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
    const inCode = new Set([...code.matchAll(/'((?:savevm|vfio|multifd|ram|vmstate|return-path|migration)\/[a-z0-9-]+)'/g)].map((m) => m[1]));
    const doc = readFileSync(join(ROOT, 'docs', 'validate-rules.md'), 'utf8');
    const inDoc = new Set([...doc.matchAll(/`((?:savevm|vfio|multifd|ram|vmstate|return-path|migration)\/[a-z0-9-]+)`/g)].map((m) => m[1]));
    expect([...inCode].sort()).toEqual([...inDoc].sort());
  });
});
