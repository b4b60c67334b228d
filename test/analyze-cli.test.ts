import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mainStreams, REAL, ROOT, tempDir } from './helpers.js';

/**
 * `analyze-migration -f FILE` (and `migstream analyze`) as a drop-in for QEMU's
 * scripts/analyze-migration.py: the recorded outputs of the script (fixtures/real/<version>/
 * <case>.analyze.json for -d state, .desc.json for -d desc) are the expected values.
 */
const BIN = join(ROOT, 'bin', 'analyze-migration');
const MIGSTREAM = join(ROOT, 'bin', 'migstream');
const tmp = tempDir('migstream-analyze-');

const run = (cmd: string, args: string[], cwd?: string): { code: number | null; out: string; err: string } => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('analyze-migration -f FILE prints what the script printed', () => {
  for (const f of mainStreams().filter((x) => existsSync(`${x.base}.analyze.json`))) {
    it(`${f.version}/${f.name}`, () => {
      const r = run(BIN, ['-f', f.path]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toBe(readFileSync(`${f.base}.analyze.json`, 'utf8'));
    });
  }
});

describe('migstream analyze -f FILE -d desc prints what the script printed', () => {
  for (const f of mainStreams().filter((x) => existsSync(`${x.base}.desc.json`))) {
    it(`${f.version}/${f.name}`, () => {
      const r = run(MIGSTREAM, ['analyze', '--file', f.path, '--dump', 'desc']);
      expect(r.code).toBe(0);
      expect(r.out).toBe(readFileSync(`${f.base}.desc.json`, 'utf8'));
    });
  }
});

describe('the script’s other flags', () => {
  it('-x writes RAMBlocks, desc.json and state.json into the current directory and names them', () => {
    const dir = join(tmp, 'x');
    mkdirSync(dir);
    const base = join(REAL, 'qemu-7.2', 'pc-paused');
    const r = run(BIN, ['-f', `${base}.mig`, '-x'], dir);
    expect(r.code).toBe(0);
    // the script prints desc.json, each RAMBlock as it creates its file (MEM_SIZE order), state.json
    expect(r.out.split('\n')).toEqual([
      'desc.json',
      'pc.ram',
      '/rom@etc/acpi/tables',
      'pc.bios',
      'pc.rom',
      '/rom@etc/table-loader',
      '/rom@etc/acpi/rsdp',
      'state.json',
      '',
    ]);
    expect(readFileSync(join(dir, 'state.json'), 'utf8') + '\n').toBe(readFileSync(`${base}.analyze.json`, 'utf8'));
    expect(readFileSync(join(dir, 'desc.json'), 'utf8') + '\n').toBe(readFileSync(`${base}.desc.json`, 'utf8'));
    expect(readdirSync(dir).sort()).toEqual(['desc.json', 'pc.bios', 'pc.ram', 'pc.rom', 'rom@etc', 'state.json']);
    // the RAMBlocks at their used lengths (0x2000000 for pc.ram in the script's section sizes)
    expect(readFileSync(join(dir, 'pc.ram')).length).toBe(0x2000000);
    expect(readFileSync(join(dir, 'rom@etc', 'acpi', 'rsdp')).length).toBe(0x1000);
  });

  it('-m on the mapped-ram recording lists every page slot: 608, of which 563 absent ("Filled with 0x00")', () => {
    // the counts analyze-migration.py -m gave on this file (issue #12)
    const r = run(BIN, ['-f', join(REAL, 'qemu-11.1', 'pc-mapped-ram.mig'), '-m']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as Record<string, { memory: Record<string, string> }>;
    const memory = Object.entries(doc['ram (1)']?.memory ?? {});
    expect(memory.length).toBe(608);
    expect(memory.filter(([, v]) => v === 'Filled with 0x00').length).toBe(563);
    // slots in block order, each block's pages in address order
    expect(memory[0]?.[0]).toBe('pc.ram (0x0000000000000000)');
    expect(memory[512]?.[0]).toBe('pc.bios (0x0000000000000000)');
    expect(memory[607]?.[0]).toBe('pc.rom (0x000000000001f000)');
    expect(memory[512 + 19]?.[1]).not.toBe('Filled with 0x00'); // pc.bios pages 19..63 are in the bitmap
  });

  it('a missing file or no -f: exit 2, one line, no traceback', () => {
    const a = run(BIN, ['-f', join(tmp, 'none.mig')]);
    expect(a.code).toBe(2);
    expect(a.err).toBe(`migstream: cannot open ${join(tmp, 'none.mig')}: no such file or directory\n`);
    const b = run(BIN, []);
    expect(b.code).toBe(2);
    expect(b.err).toContain("required option '-f, --file <file>' not specified");
  });
});
