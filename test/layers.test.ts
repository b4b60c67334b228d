import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

// The layering check: every module of src/, grammar/, bench/ and scripts/ belongs to one layer
// of layers.json; an import may go to the same layer or one below, never above, and the import
// graph has no cycle. Type-only imports count: a cycle of types is still a knot in the design.

const ROOT = join(import.meta.dirname, '..');
interface Layer {
  name: string;
  paths: string[];
}
const { layers } = JSON.parse(readFileSync(join(ROOT, 'layers.json'), 'utf8')) as { layers: Layer[] };

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const MODULES = ['grammar', 'src', 'bench', 'scripts'].flatMap(sources);

function layerOf(file: string): number {
  return layers.findIndex((l) => l.paths.some((p) => file.startsWith(p)));
}

/** Relative imports of a module (static, re-exports and dynamic), resolved to repository paths. */
function importsOf(file: string, text: string): string[] {
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/g),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

const GRAPH = new Map(MODULES.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'))]));

/** The first cycle found by a depth-first walk, as the list of modules on it, or undefined. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

describe('layers', () => {
  it('every module is in exactly one layer of layers.json', () => {
    const unplaced = MODULES.filter((f) => layerOf(f) < 0);
    expect(unplaced).toEqual([]);
    const doubly = MODULES.filter((f) => layers.filter((l) => l.paths.some((p) => f.startsWith(p))).length > 1);
    expect(doubly).toEqual([]);
  });

  it('every relative import names a module that exists', () => {
    const missing = [...GRAPH].flatMap(([f, deps]) => deps.filter((d) => !GRAPH.has(d)).map((d) => `${f} -> ${d}`));
    expect(missing).toEqual([]);
  });

  it('no module imports from a layer above its own', () => {
    const upward = [...GRAPH].flatMap(([f, deps]) =>
      deps
        .filter((d) => layerOf(d) > layerOf(f))
        .map((d) => `${f} (${layers[layerOf(f)].name}) -> ${d} (${layers[layerOf(d)].name})`),
    );
    expect(upward).toEqual([]);
  });

  it('the import graph has no cycle', () => {
    expect(findCycle(GRAPH)).toBeUndefined();
  });

  // the checker itself, on graphs whose answer is known
  it('finds an upward import and a cycle when there is one', () => {
    expect(
      importsOf(
        'src/codec/x.ts',
        "import type { A } from '../model/a.js';\nexport { b } from './b.js';\nconst c = await import('../cli/c.js');",
      ),
    ).toEqual(['src/model/a.ts', 'src/codec/b.ts', 'src/cli/c.ts']);
    expect(layerOf('src/cli/c.ts')).toBeGreaterThan(layerOf('src/codec/x.ts'));
    expect(
      findCycle(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ]),
      ),
    ).toEqual(['a', 'b', 'c', 'a']);
    expect(
      findCycle(
        new Map([
          ['a', ['b', 'c']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
    ).toBeUndefined();
  });
});
