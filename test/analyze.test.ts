import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { pyDumps } from '../src/formats/pyjson.js';
import { parseVmDescription } from '../src/vmstate/vmdesc.js';
import { decodeFile, mainStreams } from './helpers.js';

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
  for (const f of mainStreams().filter((x) => existsSync(`${x.base}.analyze.err.txt`) && existsSync(`${x.base}.desc.json`))) {
    it(`${f.version}/${f.name}: no Raw device section, every FULL section decoded field by field`, () => {
      const { records, error } = decodeFile(f.path);
      expect(error).toBeUndefined();
      expect(records.filter((r) => r.kind === 'raw')).toEqual([]);
      const full = records.filter((r) => r.kind === 'section' && r.section === 'FULL' && r.idstr !== 'ram').length;
      expect(records.filter((r) => r.kind === 'vmstate').length).toBe(full);
      // and the dump has every section the stream opened (err.txt holds the script's failure)
      const dump = new AnalyzeDump();
      for (const r of records) dump.add(r);
      const starts = records.filter((r) => r.kind === 'section' && (r.section === 'START' || r.section === 'FULL')).length;
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
