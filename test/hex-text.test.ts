/**
 * HexScratch writes bytes as analyze-migration.py prints them, `" ".join("{0:02x}".format(c) for
 * c in data)` (scripts/analyze-migration.py, VMSDFieldGeneric.__str__ and the RAM section's
 * memory dump), as a JSON string literal. The expected text here is that expression done byte by
 * byte; the writer under test does four bytes at a time, so lengths around multiples of four and
 * views that start at any offset are the cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HexScratch } from '../src/formats/hex-text.js';

const scriptHex = (b: Uint8Array): string => `"${Array.from(b, (c) => c.toString(16).padStart(2, '0')).join(' ')}"`;

describe('HexScratch: the script hex of bytes, as a JSON string', () => {
  it('every length from 0 to 40, every byte value', () => {
    const hex = new HexScratch();
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (let n = 0; n <= 40; n++) {
      const b = all.subarray(255 - n, 255);
      expect(hex.quoted(b)).toBe(scriptHex(b));
    }
    expect(hex.quoted(all)).toBe(scriptHex(all));
    expect(hex.quoted(new Uint8Array(0))).toBe('""');
  });

  it('a guest page, then shorter inputs: nothing of the longer one is left in the text', () => {
    const hex = new HexScratch();
    const page = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff);
    expect(hex.quoted(page)).toBe(scriptHex(page));
    expect(hex.quoted(page.subarray(5, 10))).toBe(scriptHex(page.subarray(5, 10)));
    expect(hex.quoted(Uint8Array.of(0xab))).toBe('"ab"');
  });

  it('any bytes, in views starting anywhere in their buffer (fast-check)', () => {
    const hex = new HexScratch();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (bytes, skip) => {
        const buf = new Uint8Array(bytes.length + skip);
        buf.set(bytes, skip);
        const view = buf.subarray(skip);
        expect(hex.quoted(view)).toBe(scriptHex(bytes));
      }),
      { numRuns: 500 },
    );
  });
});
