import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { pyDumps } from '../src/formats/pyjson.js';
import { parseVmDescription } from '../src/vmstate/vmdesc.js';
import { openMainStream } from '../src/codec/open.js';
import { decodeFile, mainStreams, PipeLike } from './helpers.js';

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

  it("--ram hex (the script's -m fails on any normal page): pages as hex, zero pages as fill", () => {
    const f = mainStreams().find((x) => x.version === 'qemu-11.1' && x.name === 'pc-paused.mig')!;
    const { records } = decodeFile(f.path);
    const dump = new AnalyzeDump('hex');
    for (const r of records) dump.add(r);
    const mem = (dump.toPy().get('ram (1)') as Map<string, unknown>).get('memory') as Map<string, string>;
    const page = records.find((r) => r.kind === 'ram' && r.op === 'page');
    if (page?.kind !== 'ram' || page.op !== 'page') throw new Error('no page');
    const bytes = readFileSync(f.path).subarray(page.offset + page.length - 4096, page.offset + page.length);
    const key = `${page.block} (0x${page.addr.toString(16).padStart(16, '0')})`;
    expect(mem.get(key)).toBe([...bytes].map((x) => x.toString(16).padStart(2, '0')).join(' '));
    expect(mem.get('pc.ram (0x0000000000000000)')).toBe('Filled with 0x00'); // worked-example.md: first record is ZERO at 0
    expect(mem.size).toBe(8273 + 49); // index.json census: ZERO 8273, PAGE 49
  });
});
