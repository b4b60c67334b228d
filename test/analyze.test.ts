import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { pyDumps, PyJsonBytes, PyJsonText, PyLazyObject, type PyValue } from '../src/formats/pyjson.js';
import { RamPageLog } from '../src/formats/ram-page-log.js';
import { BufferSource } from '../src/io/source.js';
import { parseVmDescription } from '../src/vmstate/vmdesc.js';
import { openMainStream } from '../src/codec/open.js';
import { decodeFile, mainStreams, PipeLike, REAL, runCli, tempDir } from './helpers.js';

/**
 * fixtures/real/<version>/<case>.analyze.json and .desc.json are what QEMU's
 * scripts/analyze-migration.py printed for each recording (-d state, -d desc).
 */
describe('dump --format analyze equals analyze-migration.py -d state, text for text', () => {
  for (const f of mainStreams().filter((x) => existsSync(`${x.base}.analyze.json`))) {
    it(`${f.version}/${f.name}`, () => {
      const { records, error } = decodeFile(f.path);
      expect(error).toBeUndefined();
      const dump = new AnalyzeDump();
      for (const r of records) dump.add(r);
      expect(pyDumps(dump.toPy()) + '\n').toBe(readFileSync(`${f.base}.analyze.json`, 'utf8'));
    });
  }
});

// From a pipe the vmdescription comes last, after the device sections it describes: they are
// kept as bytes until it arrives and decoded then. The output is still the script's, text for text.
describe('dump --format analyze from a pipe equals analyze-migration.py -d state', () => {
  // Without section footers a device section's end is only known from its description, which a
  // pipe delivers last: such a stream from a pipe is refused with that reason (the script, which
  // seeks to the description first, cannot read a pipe at all).
  const footerless = new Set(['qemu-7.2/pc-old-format.mig', 'qemu-11.1/pc-no-section-footer.mig']);
  for (const f of mainStreams().filter((x) => existsSync(`${x.base}.analyze.json`))) {
    it(`${f.version}/${f.name}`, () => {
      const s = openMainStream(new PipeLike(readFileSync(f.path)));
      if (footerless.has(`${f.version}/${f.name}`)) {
        expect(() => [...s.records()]).toThrow(
          /expected a vmdescription entry for "\w+" instance 0 \(this stream has no section footers to find its end\), found none/,
        );
        return;
      }
      const dump = new AnalyzeDump();
      for (const r of s.records()) dump.add(r);
      expect(pyDumps(dump.toPy()) + '\n').toBe(readFileSync(`${f.base}.analyze.json`, 'utf8'));
    });
  }
});

describe('dump --format desc equals analyze-migration.py -d desc', () => {
  for (const f of mainStreams().filter((x) => existsSync(`${x.base}.desc.json`))) {
    it(`${f.version}/${f.name}`, () => {
      const { records } = decodeFile(f.path);
      const vd = records.find((r) => r.kind === 'vmdescription');
      expect(vd).toBeDefined();
      if (vd?.kind !== 'vmdescription') return;
      expect(pyDumps(parseVmDescription(vd.json) as never) + '\n').toBe(readFileSync(`${f.base}.desc.json`, 'utf8'));
    });
  }
});

describe('where analyze-migration.py failed, every device section still decodes', () => {
  for (const f of mainStreams().filter(
    (x) => existsSync(`${x.base}.analyze.err.txt`) && existsSync(`${x.base}.desc.json`),
  )) {
    it(`${f.version}/${f.name}: no Raw device section, every FULL section decoded field by field`, () => {
      const { records, error } = decodeFile(f.path);
      expect(error).toBeUndefined();
      expect(records.filter((r) => r.kind === 'raw')).toEqual([]);
      const full = records.filter((r) => r.kind === 'section' && r.section === 'FULL' && r.idstr !== 'ram').length;
      expect(records.filter((r) => r.kind === 'vmstate').length).toBe(full);
      // and the dump has every section the stream opened (err.txt holds the script's failure)
      const dump = new AnalyzeDump();
      for (const r of records) dump.add(r);
      const starts = records.filter(
        (r) => r.kind === 'section' && (r.section === 'START' || r.section === 'FULL'),
      ).length;
      expect(dump.toPy().size).toBe(starts);
    });
  }
});

describe('streams without a vmdescription (suppress-vmdesc)', () => {
  for (const f of mainStreams().filter((x) => x.name === 'pc-suppress-vmdesc.mig')) {
    it(`${f.version}: RAM decoded, device sections kept as Raw with their byte range`, () => {
      const { records, error, warnings } = decodeFile(f.path);
      expect(error).toBeUndefined();
      expect(records.some((r) => r.kind === 'vmdescription')).toBe(false);
      const raws = records.filter((r) => r.kind === 'raw');
      const full = records.filter((r) => r.kind === 'section' && r.section === 'FULL');
      expect(raws.length).toBe(full.length);
      expect(warnings).toBe(full.length);
      const dump = new AnalyzeDump();
      for (const r of records) dump.add(r);
      const doc = dump.toPy();
      const ramKey = [...doc.keys()].find((k) => k.startsWith('ram ('))!;
      const ram = doc.get(ramKey) as Map<string, unknown>;
      expect((ram.get('section sizes') as Map<string, string>).get('pc.ram')).toBe('0x0000000002000000');
      const timer = doc.get('timer (0)') as Map<string, Map<string, unknown>>;
      expect(timer.get('$raw')?.get('length')).toBe(raws[0].length);
    });
  }
});

describe('where analyze-migration.py crashes, migstream is right', () => {
  it('section names of 128 bytes or more (the script reads the length byte as signed)', async () => {
    const { HEADER, full, footer, EOF, vmdesc, be32, stream } = await import('./bytes.js');
    const name = 'n'.repeat(130);
    // uint32 is a be32 on the wire (spec §5.2); the script renders it as "0x%08x" (§8.3)
    const json = `{"page_size": 4096, "devices": [{"name": "${name}", "instance_id": 0, "vmsd_name": "n", "version": 1, "fields": [{"name": "v", "type": "uint32", "size": 4}]}]}`;
    const b = stream(HEADER, full(3, name, 0, 1), be32(0xdeadbeef), footer(3), EOF, vmdesc(json));
    const { openMainStream } = await import('../src/codec/open.js');
    const { BufferSource } = await import('../src/io/source.js');
    const s = openMainStream(new BufferSource(b));
    const dump = new AnalyzeDump();
    for (const r of s.records()) dump.add(r);
    expect(pyDumps(dump.toPy())).toBe(`{\n    "${name} (3)": {\n        "v": "0xdeadbeef"\n    }\n}`);
  });

  it('arrays of integers, written in one piece: the text the script prints for each element', async () => {
    const { HEADER, full, footer, EOF, vmdesc, stream } = await import('./bytes.js');
    // VMSDFieldInt (scripts/analyze-migration.py): "0x%0*x" of the bytes read big-endian, and for
    // a negative signed value " (%d)" after it; uint fields the same without the value
    const fields = [
      { name: 'a', type: 'int8', size: 1, array_len: 4 },
      { name: 'b', type: 'int16', size: 2, array_len: 2 },
      { name: 'c', type: 'uint64', size: 8, array_len: 2 },
      { name: 'd', type: 'int64', size: 8, array_len: 2 },
      { name: 'e', type: 'uint8', size: 1, array_len: 2 },
      // a later field of the same name joins the array's list
      { name: 'e', type: 'uint8', size: 1 },
    ];
    const json = JSON.stringify({
      page_size: 4096,
      devices: [{ name: 'dev', instance_id: 0, vmsd_name: 'dev', version: 1, fields }],
    });
    const payload = [
      ...[0x7f, 0x80, 0xff, 0x00],
      ...[0x80, 0x00, 0x00, 0x01],
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1],
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0],
      ...[0x0a, 0x0b, 0x0c],
    ];
    const b = stream(HEADER, full(3, 'dev', 0, 1), payload, footer(3), EOF, vmdesc(json));
    const s = openMainStream(new BufferSource(b));
    const dump = new AnalyzeDump();
    for (const r of s.records()) dump.add(r);
    const list = (indent: string, items: string[]): string =>
      `[\n${items.map((x) => `${indent}    "${x}"`).join(',\n')}\n${indent}]`;
    const ind = '        ';
    expect(pyDumps(dump.toPy())).toBe(
      `{\n    "dev (3)": {\n` +
        `${ind}"a": ${list(ind, ['0x7f', '0x80 (-128)', '0xff (-1)', '0x00'])},\n` +
        `${ind}"b": ${list(ind, ['0x8000 (-32768)', '0x0001'])},\n` +
        `${ind}"c": ${list(ind, ['0xffffffffffffffff', '0x0000000000000001'])},\n` +
        `${ind}"d": ${list(ind, ['0xfffffffffffffffe (-2)', '0x0000000000000000'])},\n` +
        `${ind}"e": ${list(ind, ['0x0a', '0x0b', '0x0c'])}\n` +
        `    }\n}`,
    );
  });

  it("--ram hex (the script's -m fails on any normal page): pages as hex, zero pages as fill", () => {
    const f = mainStreams().find((x) => x.version === 'qemu-11.1' && x.name === 'pc-paused.mig')!;
    const { records } = decodeFile(f.path);
    const dump = new AnalyzeDump('hex');
    for (const r of records) dump.add(r);
    const lazy = (dump.toPy().get('ram (1)') as Map<string, unknown>).get('memory') as PyLazyObject;
    const mem = new Map(Array.from(lazy.entries(), ([k, v]) => [k, textOf(v)]));
    const page = records.find((r) => r.kind === 'ram' && r.op === 'page');
    if (page?.kind !== 'ram' || page.op !== 'page') throw new Error('no page');
    const bytes = readFileSync(f.path).subarray(page.offset + page.length - 4096, page.offset + page.length);
    const key = `${page.block} (0x${page.addr.toString(16).padStart(16, '0')})`;
    expect(mem.get(key)).toBe([...bytes].map((x) => x.toString(16).padStart(2, '0')).join(' '));
    expect(mem.get('pc.ram (0x0000000000000000)')).toBe('Filled with 0x00'); // worked-example.md: first record is ZERO at 0
    expect(mem.size).toBe(8273 + 49); // index.json census: ZERO 8273, PAGE 49
  });

  describe("--ram hex keeps the script's dict semantics at bounded memory", () => {
    // analyze-migration.py -m assigns each page into a dict: a page keeps the place of its first
    // send and takes the content of its last. A JS Map assigned the same way is that dict.
    const f = join(REAL, 'qemu-7.2', 'pc-dirty-iterations.mig');
    const bytes = new Uint8Array(readFileSync(f));
    const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const expected = new Map<string, string>();
    let resent = 0;
    for (const r of decodeFile(f).records) {
      if (r.kind !== 'ram' || (r.op !== 'page' && r.op !== 'zero')) continue;
      const key = `${r.block} (0x${r.addr.toString(16).padStart(16, '0')})`;
      if (expected.has(key)) resent++;
      expected.set(key, r.op === 'page' ? hex(r.data) : 'Filled with 0x00');
    }

    const memoryOf = (source: BufferSource | PipeLike): Map<string, unknown> => {
      const s = openMainStream(source);
      const dump = new AnalyzeDump('hex', { source, offsetOf: (b) => s.reader.offsetOf(b) });
      for (const r of s.records()) dump.add(r);
      const lazy = (dump.toPy().get('ram (2)') as Map<string, unknown>).get('memory') as PyLazyObject;
      const mem = new Map(Array.from(lazy.entries(), ([k, v]) => [k, textOf(v)]));
      dump.close();
      return mem;
    };

    it('pages re-sent by later dirty rounds are in the recording (the case under test)', () => {
      expect(resent).toBeGreaterThan(100);
    });

    it('read back from the input file: same keys, same order, last content', () => {
      const mem = memoryOf(new BufferSource(bytes, f));
      expect([...mem.keys()]).toEqual([...expected.keys()]);
      expect([...mem.values()]).toEqual([...expected.values()]);
    });

    it('from a pipe (spilled to a temporary file): the same', () => {
      const mem = memoryOf(new PipeLike(bytes));
      expect([...mem.keys()]).toEqual([...expected.keys()]);
      expect([...mem.values()]).toEqual([...expected.values()]);
    });

    it('the command line writes each page as bytes into its output: the document the text path makes', () => {
      // pyWrite with no byte writer joins the pages' bytes into its text; `migstream dump`
      // hands them to its output buffer between the text around them (several flushes here)
      const s = openMainStream(new BufferSource(bytes, f));
      const dump = new AnalyzeDump('hex', { source: s.source, offsetOf: (b) => s.reader.offsetOf(b) });
      for (const r of s.records()) dump.add(r);
      const text = pyDumps(dump.toPy()) + '\n';
      dump.close();
      const cli = runCli(['dump', '--ram', 'hex', f]);
      expect(cli.stderr).toBe('');
      expect(cli.code).toBe(0);
      expect(cli.raw.length).toBeGreaterThan(2 * (1 << 20));
      expect(cli.stdout).toBe(text);
    });

    it('the spill file is rewritten in place for a re-sent page and removed on close', () => {
      // a directory of its own: other suites spill into the system's at the same time
      const parent = tempDir('migstream-spill-');
      const log = new RamPageLog(undefined, parent);
      log.put('pc.ram', 0x1000, new Uint8Array(4096).fill(1));
      log.put('pc.ram', 0, new Uint8Array(4096).fill(2));
      log.put('pc.ram', 0x1000, new Uint8Array(4096).fill(3));
      log.put('pc.ram', 0, undefined);
      const got = [...log.pages()].map((p) => [p.addr, p.data ? p.data[0] : 'zero', p.data?.length ?? 0]);
      expect(got).toEqual([
        [0x1000, 3, 4096],
        [0, 'zero', 0],
      ]);
      expect(readdirSync(parent).filter((n) => n.startsWith('migstream-pages-'))).toHaveLength(1);
      log.close();
      expect(readdirSync(parent)).toEqual([]);
    });
  });
});

/** A memory entry's value as the JSON document holds it (page hex is written pre-quoted). */
function textOf(v: PyValue): unknown {
  // a page's bytes (PyJsonBytes) are read as the entry comes: the next one reuses them
  if (v instanceof PyJsonBytes) return JSON.parse(Buffer.from(v.bytes).toString('latin1'));
  return v instanceof PyJsonText ? JSON.parse(v.json) : v;
}
