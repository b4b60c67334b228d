import { describe, expect, it } from 'vitest';
import { StreamSummary } from '../src/formats/summary.js';
import { decodeFile, REAL } from './helpers.js';

function sections(path: string): { idstr: string; parts: number; bytes: number }[] {
  const { records, error } = decodeFile(path);
  expect(error).toBeUndefined();
  const s = new StreamSummary();
  for (const r of records) {
    s.closeOpenSection(r);
    s.add(r);
  }
  return [...s.sections.values()].map((x) => ({
    idstr: x.idstr,
    parts: x.parts.START + x.parts.PART + x.parts.END + x.parts.FULL,
    bytes: x.bytes,
  }));
}

// The same machine recorded with and without section footers (the harness's pc-paused and its
// footerless twins, same QEMU): a footer is QEMU_VM_SECTION_FOOTER plus the be32 section id,
// 5 bytes (savevm-main-channel.md, section footer), so every section of the footerless stream,
// whose end is only found from the next top-level record, is 5 bytes per section record shorter.
describe('summary: bytes of sections without footers', () => {
  for (const [version, footered, footerless] of [
    ['qemu-11.1', 'pc-paused.mig', 'pc-no-section-footer.mig'],
    ['qemu-7.2', 'pc-paused.mig', 'pc-old-format.mig'],
  ] as const) {
    it(`${version}: ${footerless} against ${footered}`, () => {
      const a = sections(`${REAL}/${version}/${footered}`);
      const b = sections(`${REAL}/${version}/${footerless}`);
      expect(b.map((x) => x.idstr)).toEqual(a.map((x) => x.idstr));
      expect(b.map((x) => x.bytes)).toEqual(a.map((x) => x.bytes - 5 * x.parts));
      expect(a.find((x) => x.idstr === 'ram')?.parts).toBe(3);
    });
  }
});
