import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { ROOT, tempDir } from './helpers.js';

/**
 * Golden outputs: every output format, on real recordings and save-engine streams, compared in
 * full (small outputs as files, large ones and binary extractions by SHA-256). Where each
 * expected output comes from is in test/golden/README.md. `UPDATE_GOLDEN=1 npx vitest run
 * test/golden.test.ts` rewrites them; a rewritten golden is reviewed before it is committed.
 */
const GOLDEN = join(ROOT, 'test', 'golden');
const update = process.env.UPDATE_GOLDEN === '1';
const tmp = tempDir('migstream-golden-');
let n = 0;

/** The CLI in this process (so mutation testing sees the formatters), output through -o. */
async function dumpTo(args: string[]): Promise<{ code: number; out: string }> {
  const out = join(tmp, `out${n++}`);
  const code = await main(['node', 'migstream', 'dump', ...args, '-o', out]);
  return { code, out };
}
/** Commands that print to stdout: the built CLI as a user runs it. */
function cli(args: string[]): { code: number; stdout: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'migstream'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout };
}

function golden(name: string, actual: string): void {
  const p = join(GOLDEN, name);
  if (update) writeFileSync(p, actual);
  // a missing golden fails: writing it here would make the test pass on any output
  expect(existsSync(p), `${name} is missing: UPDATE_GOLDEN=1 writes it, then review it`).toBe(true);
  expect(actual).toBe(readFileSync(p, 'utf8'));
}
const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
/** Every file below a directory with its SHA-256, as "path sha256" lines. */
function tree(dir: string): string {
  const lines: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else lines.push(`${relative(dir, p)} ${statSync(p).size} ${sha256(readFileSync(p))}`);
    }
  };
  walk(dir);
  return lines.join('\n') + '\n';
}

const real = (v: string, c: string): string => `fixtures/real/qemu-${v}/${c}`;
const vfio = (c: string): string => `fixtures/vfio/${c}`;

describe('dump --format analyze: VFIO devices (no analyze-migration.py output exists for them)', () => {
  for (const c of ['v1-7.2', 'v2-precopy-switchover-ack-8.1', 'v2-two-devices-11.1']) {
    it(c, async () => {
      const { code, out } = await dumpTo([vfio(`${c}.mig`)]);
      expect(code).toBe(0);
      golden(`${c}.analyze.json`, readFileSync(out, 'utf8'));
    });
  }
  it('multifd-10.0 with its channels, --ram summary', async () => {
    const { code, out } = await dumpTo([
      vfio('multifd-10.0.mig'),
      '--ram',
      'summary',
      '--multifd',
      vfio('multifd-10.0.multifd0.bin'),
      '--multifd',
      vfio('multifd-10.0.multifd1.bin'),
    ]);
    expect(code).toBe(0);
    golden('multifd-10.0.analyze-ram-summary.json', readFileSync(out, 'utf8'));
  });
});

describe('dump --format ir', () => {
  /**
   * The IR names its input relative to the IR file, which depends on where the checkout and the
   * temporary directory are: checked to lead to the input, then masked for the comparison.
   */
  function irText(out: string, input: string): string {
    const text = readFileSync(out, 'utf8');
    const source = /^"source": (".*"),$/m.exec(text)?.[1];
    expect(source).toBeDefined();
    expect(resolve(dirname(out), JSON.parse(source ?? '""') as string)).toBe(resolve(input));
    return text.replace(/^"source": ".*",$/m, '"source": "<the input, relative to the IR>",');
  }
  it('a VFIO stream, in full', async () => {
    const input = vfio('v2-stop-copy-8.0.mig');
    const { code, out } = await dumpTo([input, '--format', 'ir']);
    expect(code).toBe(0);
    golden('v2-stop-copy-8.0.ir.jsonl', irText(out, input));
  });
  it('real recordings, by SHA-256 (1-5 MB each)', async () => {
    const lines: string[] = [];
    for (const f of [
      real('11.1', 'pc-paused.mig'),
      real('10.0', 'pc-xbzrle.mig'),
      real('11.1', 'pc-mapped-ram.mig'),
      real('7.2', 'pc-compress-7.2.mig'),
    ]) {
      const { code, out } = await dumpTo([f, '--format', 'ir']);
      expect(code).toBe(0);
      lines.push(`${f} ${sha256(Buffer.from(irText(out, f)))}`);
    }
    golden('real.ir.sha256', lines.join('\n') + '\n');
  });
});

describe('dump --format summary', () => {
  for (const [name, args] of [
    ['q35-devices-running-11.1', [real('11.1', 'q35-devices-running.mig')]],
    ['pc-xbzrle-10.0', [real('10.0', 'pc-xbzrle.mig')]],
    [
      'pc-multifd-tcp-10.0',
      [
        real('10.0', 'pc-multifd-tcp.mig'),
        '--multifd',
        real('10.0', 'pc-multifd-tcp.multifd0.bin'),
        '--multifd',
        real('10.0', 'pc-multifd-tcp.multifd1.bin'),
      ],
    ],
    ['pc-multifd-tcp-10.0.multifd0', [real('10.0', 'pc-multifd-tcp.multifd0.bin')]],
  ] as const) {
    it(name, async () => {
      const { code, out } = await dumpTo([...args, '--format', 'summary']);
      expect(code).toBe(0);
      golden(`${name}.summary.txt`, readFileSync(out, 'utf8'));
    });
  }
});

describe('stats', () => {
  for (const [name, f] of [
    ['q35-devices-running-11.1', real('11.1', 'q35-devices-running.mig')],
    ['pc-dirty-iterations-7.2', real('7.2', 'pc-dirty-iterations.mig')],
    ['pc-multifd-zstd-tcp-11.1.multifd1', real('11.1', 'pc-multifd-zstd-tcp.multifd1.bin')],
    ['v2-two-devices-11.1', vfio('v2-two-devices-11.1.mig')],
  ] as const) {
    it(name, () => {
      const r = cli(['stats', f]);
      expect(r.code).toBe(0);
      golden(`${name}.stats.txt`, r.stdout);
    });
  }
});

describe('validate output', () => {
  it('text and JSON for a bad VFIO multifd set', () => {
    const args = [
      'validate',
      vfio('bad-multifd-buffer-version.mig'),
      '--capability',
      'multifd',
      '--qemu-version',
      '10.0',
      '--multifd',
      vfio('bad-multifd-buffer-version.multifd0.bin'),
      '--multifd',
      vfio('bad-multifd-buffer-version.multifd1.bin'),
    ];
    const text = cli(args);
    expect(text.code).toBe(1);
    golden('bad-multifd-buffer-version.validate.txt', text.stdout);
    const json = cli([...args, '--format', 'json']);
    expect(json.code).toBe(1);
    golden('bad-multifd-buffer-version.validate.json', json.stdout);
  });
});

describe('extracted contents, file by file', () => {
  for (const [name, f] of [
    ['pc-xbzrle-10.0', real('10.0', 'pc-xbzrle.mig')],
    ['pc-xbzrle-11.1', real('11.1', 'pc-xbzrle.mig')],
    ['pc-compress-7.2', real('7.2', 'pc-compress-7.2.mig')],
    ['pc-mapped-ram-11.1', real('11.1', 'pc-mapped-ram.mig')],
    ['pc-paused-7.2', real('7.2', 'pc-paused.mig')],
  ] as const) {
    it(`--ram extract: ${name}`, async () => {
      const dir = join(tmp, `ram-${name}`);
      const { code } = await dumpTo([f, '--ram', `extract:${dir}`]);
      expect(code).toBe(0);
      golden(`${name}.ram-extract.sha256`, tree(dir));
    });
  }
  it('--ram extract with multifd channels: pc-multifd-tcp-10.0', async () => {
    const dir = join(tmp, 'ram-multifd');
    const { code } = await dumpTo([
      real('10.0', 'pc-multifd-tcp.mig'),
      '--ram',
      `extract:${dir}`,
      '--multifd',
      real('10.0', 'pc-multifd-tcp.multifd0.bin'),
      '--multifd',
      real('10.0', 'pc-multifd-tcp.multifd1.bin'),
    ]);
    expect(code).toBe(0);
    golden('pc-multifd-tcp-10.0.ram-extract.sha256', tree(dir));
  });
  for (const [name, args] of [
    ['v2-two-devices-11.1', [vfio('v2-two-devices-11.1.mig')]],
    [
      'multifd-10.0',
      [
        vfio('multifd-10.0.mig'),
        '--multifd',
        vfio('multifd-10.0.multifd0.bin'),
        '--multifd',
        vfio('multifd-10.0.multifd1.bin'),
      ],
    ],
  ] as const) {
    it(`--vfio-extract: ${name}`, async () => {
      const dir = join(tmp, `vfio-${name}`);
      const { code } = await dumpTo([...args, '--vfio-extract', dir]);
      expect(code).toBe(0);
      golden(`${name}.vfio-extract.sha256`, tree(dir));
    });
  }
});

/**
 * What the guest wrote, from the guest's own code (fixtures/real/tools/dirtier.S): it increments
 * the 16-bit words at +0 and +0x800 of each page 0x10000..0x2ffff in turn, page after page, and
 * nothing else there. So in the RAM a stream carries, each of those 32 pages holds one counter
 * twice and zeros elsewhere, and the counters read C+1 up to the page where the guest was
 * stopped, C after it. XBZRLE deltas and COMPRESS_PAGE contents applied wrongly break that.
 */
describe('--ram extract against the guest program that wrote the memory', () => {
  for (const [v, c] of [
    ['10.0', 'pc-xbzrle'],
    ['11.1', 'pc-xbzrle'],
    ['7.2', 'pc-dirty-iterations'],
    ['11.1', 'pc-dirty-iterations'],
  ] as const) {
    it(`${v} ${c}`, async () => {
      const dir = join(tmp, `dirtier-${v}-${c}`);
      const { code } = await dumpTo([real(v, `${c}.mig`), '--ram', `extract:${dir}`]);
      expect(code).toBe(0);
      const ram = readFileSync(join(dir, 'pc.ram'));
      const counters: number[] = [];
      for (let page = 0x10000; page < 0x30000; page += 0x1000) {
        const a = ram.readUInt16LE(page);
        expect(ram.readUInt16LE(page + 0x800), `page ${page.toString(16)}: both words`).toBe(a);
        counters.push(a);
        const rest = Buffer.concat([ram.subarray(page + 2, page + 0x800), ram.subarray(page + 0x802, page + 0x1000)]);
        expect(
          rest.some((x) => x !== 0),
          `page ${page.toString(16)}: nothing but the counters`,
        ).toBe(false);
      }
      const last = counters[counters.length - 1];
      expect(last).toBeGreaterThan(100); // the guest ran for seconds
      const k = counters.findIndex((x) => x === last);
      expect(counters.slice(0, k).every((x) => x === (last + 1) % 0x10000)).toBe(true);
      expect(counters.slice(k).every((x) => x === last)).toBe(true);
    });
  }
});

describe('more of the analyze format', () => {
  for (const [name, args] of [
    ['pc-mapped-ram-11.1.ram-hex', [real('11.1', 'pc-mapped-ram.mig'), '--ram', 'hex']],
    ['pc-compress-7.2.ram-hex', [real('7.2', 'pc-compress-7.2.mig'), '--ram', 'hex']],
    ['pc-xbzrle-11.1.ram-summary', [real('11.1', 'pc-xbzrle.mig'), '--ram', 'summary']],
    ['pc-suppress-vmdesc-10.0.analyze', [real('10.0', 'pc-suppress-vmdesc.mig')]],
    [
      'pc-multifd-zstd-tcp-11.1.ram-summary',
      [
        real('11.1', 'pc-multifd-zstd-tcp.mig'),
        '--ram',
        'summary',
        '--multifd',
        real('11.1', 'pc-multifd-zstd-tcp.multifd0.bin'),
        '--multifd',
        real('11.1', 'pc-multifd-zstd-tcp.multifd1.bin'),
      ],
    ],
  ] as const) {
    it(`${name} (by SHA-256)`, async () => {
      const { code, out } = await dumpTo([...args]);
      expect(code).toBe(0);
      golden(`${name}.sha256`, `${sha256(readFileSync(out))}\n`);
    });
  }
  // the zstd pages decompressed from each channel's stream: the same code gives QEMU 7.2's guest memory for
  // the 7.2 recording (test/qemu.test.ts); 11.1's cannot be loaded here, so this is the reviewed output
  it('--ram extract of a zstd multifd set: the pages decompressed from the channels', async () => {
    const dir = join(tmp, 'ram-zstd');
    const { code } = await dumpTo([
      real('11.1', 'pc-multifd-zstd-tcp.mig'),
      '--ram',
      `extract:${dir}`,
      '--multifd',
      real('11.1', 'pc-multifd-zstd-tcp.multifd0.bin'),
      '--multifd',
      real('11.1', 'pc-multifd-zstd-tcp.multifd1.bin'),
    ]);
    expect(code).toBe(0);
    golden('pc-multifd-zstd-tcp-11.1.ram-extract.sha256', tree(dir));
  });
  it('summaries of a return path and of a stream without a vmdescription', async () => {
    for (const [name, args] of [
      [
        'pc-switchover-ack-tcp-10.0.return-path',
        ['--kind', 'return-path', real('10.0', 'pc-switchover-ack-tcp.main-return-path.bin')],
      ],
      ['pc-suppress-vmdesc-10.0', [real('10.0', 'pc-suppress-vmdesc.mig')]],
      ['pc-mapped-ram-11.1', [real('11.1', 'pc-mapped-ram.mig')]],
    ] as const) {
      const { code, out } = await dumpTo([...args, '--format', 'summary']);
      expect(code).toBe(0);
      golden(`${name}.summary.txt`, readFileSync(out, 'utf8'));
    }
  });
});

/** dump --format ir, then encode, both in this process: the input again, byte for byte. */
describe('IR both ways', () => {
  async function encodeIr(ir: string): Promise<{ code: number; out: string }> {
    const out = join(tmp, `enc${n++}`);
    const code = await main(['node', 'migstream', 'encode', ir, '-o', out]);
    return { code, out };
  }
  for (const [f, inline] of [
    [real('11.1', 'pc-paused.mig'), false],
    [real('11.1', 'pc-mapped-ram.mig'), false],
    [real('10.0', 'pc-xbzrle.mig'), true],
    [real('7.2', 'pc-compress-7.2.mig'), true],
    [vfio('v2-precopy-switchover-ack-8.1.mig'), true],
    [real('10.0', 'pc-multifd-tcp.multifd0.bin'), true],
    [real('10.0', 'pc-switchover-ack-tcp.main-return-path.bin'), false],
  ] as const) {
    it(`${f}${inline ? ' --inline' : ''}`, async () => {
      const kind = f.endsWith('return-path.bin') ? ['--kind', 'return-path'] : [];
      const ir = await dumpTo([f, '--format', 'ir', ...kind, ...(inline ? ['--inline'] : [])]);
      expect(ir.code).toBe(0);
      const enc = await encodeIr(ir.out);
      expect(enc.code).toBe(0);
      expect(Buffer.compare(readFileSync(enc.out), readFileSync(join(ROOT, f)))).toBe(0);
    });
  }
  it('an invalid stream: the IR ends with the error; encode writes what was decoded and exits 1', async () => {
    const f = real('10.0', 'pc-no-configuration.mig');
    const ir = await dumpTo([f, '--format', 'ir']);
    expect(ir.code).toBe(1);
    expect(readFileSync(ir.out, 'utf8')).toMatch(/"error": \{"code":"truncated"/);
    const enc = await encodeIr(ir.out);
    expect(enc.code).toBe(1);
    const out = readFileSync(enc.out);
    const input = readFileSync(join(ROOT, f));
    expect(out.length).toBeGreaterThan(0);
    expect(Buffer.compare(out, input.subarray(0, out.length))).toBe(0);
  });
  it('a document that is not an IR is refused', async () => {
    const bad = join(tmp, 'not-ir.json');
    writeFileSync(bad, '{"format": "something-else", "version": 1}\n');
    expect((await encodeIr(bad)).code).toBe(2);
  });
});
