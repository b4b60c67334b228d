import { describe, expect, it } from 'vitest';
import type { MainRecord, SectionItemRecord } from '../src/model/records.js';
import { encodeRecords } from '../src/codec/open.js';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { MemorySink } from '../src/io/sink.js';
import { be32, be64, bytes, counted, end, EOF, footer, full, HEADER, part, start, stream, u8 } from './bytes.js';
import { decodeBytes } from './helpers.js';

/**
 * Layouts from ../shared/spec/savevm-main-channel.md §7 with the corrections' claims
 * #46 (dirty-bitmap), #47 (spapr/htab), #48 (s390-storage_attributes), #49 (s390-skeys).
 */
function items(records: MainRecord[]): SectionItemRecord[] {
  return records.filter((r): r is SectionItemRecord => r.kind === 'section_item');
}

function reencodes(b: Uint8Array, records: MainRecord[]): void {
  const sink = new MemorySink();
  encodeRecords(records, sink);
  expect(Buffer.compare(Buffer.from(sink.bytes()), Buffer.from(b))).toBe(0);
}

describe('sections the vmdescription never describes', () => {
  it('spapr/htab: htab_shift, chunks up to the all-zero terminator, HTAB_NO_HPT', () => {
    const b = stream(
      HEADER,
      start(2, 'spapr/htab', 0, 1),
      be32(24),
      footer(2),
      part(2),
      be32(0),
      be32(5),
      [0, 2],
      [0, 1],
      bytes(32),
      be32(0),
      [0, 0],
      [0, 0],
      footer(2),
      end(2),
      be32(0xffffffff),
      footer(2),
      EOF,
    );
    const { records, error } = decodeBytes(b);
    expect(error).toBeUndefined();
    const it = items(records);
    expect(it.map((i) => i.item)).toEqual(['header', 'header', 'chunk', 'chunk', 'header']);
    expect(it[0].fields.value).toBe(24);
    expect(it[2].fields).toMatchObject({ index: 5, nValid: 2, nInvalid: 1 });
    expect((it[2].fields.hptes as Uint8Array).length).toBe(32);
    reencodes(b, records);
    const dump = new AnalyzeDump();
    for (const r of records) dump.add(r);
    expect(dump.toPy().get('spapr/htab (2)')).toBe(''); // what analyze-migration.py prints for it
  });

  it('dirty-bitmap: names only when they change, START, BITS with and without ZEROES, COMPLETE, EOS', () => {
    const b = stream(
      HEADER,
      start(7, 'dirty-bitmap', 0, 1),
      u8(0x1c),
      counted('drive0'),
      counted('bitmap0'),
      be32(65536),
      u8(0x01), // DEVICE_NAME|BITMAP_NAME|START
      u8(0x01),
      footer(7), // EOS
      end(7),
      u8(0x42),
      be64(0),
      be32(1024), // BITS|ZEROES: no buffer
      u8(0x40),
      be64(1024),
      be32(8192),
      be64(32),
      bytes(32), // BITS
      u8(0x20),
      u8(0x01),
      footer(7), // COMPLETE, EOS
      EOF,
    );
    const { records, error } = decodeBytes(b);
    expect(error).toBeUndefined();
    const it = items(records);
    expect(it[0].fields).toMatchObject({
      flags: 0x1c,
      deviceName: 'drive0',
      bitmapName: 'bitmap0',
      granularity: 65536,
      bitmapFlags: 1,
    });
    expect(it[2].fields).toEqual({ flags: 0x42, startSector: 0n, nrSectors: 1024 });
    expect(it[3].fields.bufSize).toBe(32n);
    reencodes(b, records);
  });

  it('dirty-bitmap: extended flag bytes are refused', () => {
    const b = stream(HEADER, start(7, 'dirty-bitmap', 0, 1), u8(0x81), bytes(4));
    expect(decodeBytes(b).error?.code).toBe('bad-value');
  });

  it('s390-storage_attributes: START is EOS; MORE carries count + attributes; DONE', () => {
    const b = stream(
      HEADER,
      start(3, 's390-storage_attributes', 0, 0),
      be64(0x01),
      footer(3),
      part(3),
      be64((0x10 << 12) | 0x02),
      be64(4),
      bytes(4, 0x11),
      be64(0x01),
      footer(3),
      end(3),
      be64(0x08),
      be64(0x01),
      footer(3),
      EOF,
    );
    const { records, error } = decodeBytes(b);
    expect(error).toBeUndefined();
    const it = items(records);
    expect(it).toHaveLength(5);
    expect(it[1].fields.count).toBe(4n);
    expect([...(it[1].fields.attributes as Uint8Array)]).toEqual([0x11, 0x11, 0x11, 0x11]);
    reencodes(b, records);
  });

  it('s390-skeys without a vmdescription: SKEYS ranges then EOS', () => {
    const b = stream(
      HEADER,
      full(4, 's390-skeys', 0, 1),
      be64(0x02),
      be64(3),
      bytes(3, 0x06),
      be64(0x01),
      footer(4),
      EOF,
    );
    const { records, error } = decodeBytes(b);
    expect(error).toBeUndefined();
    expect(items(records).map((i) => i.fields.pages)).toEqual([3n, undefined]);
    reencodes(b, records);
  });

  it('a lying length is refused before anything is allocated', () => {
    const b = stream(HEADER, start(3, 's390-storage_attributes', 0, 0), be64(0x02), be64(0x7fffffffffffn), bytes(16));
    const { error } = decodeBytes(b);
    expect(error?.code).toBe('limit');
  });
});
