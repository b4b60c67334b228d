import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { roundtripSource } from '../src/codec/open.js';
import { StreamReader } from '../src/io/reader.js';
import { FileSource } from '../src/io/source.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import { MultifdSummary } from '../src/multifd/summary.js';
import { fixtureIndex, REAL } from './helpers.js';

/** Real multifd channel captures (2 channels, nocomp and zstd, QEMU 7.2/10.0/11.1); census from index.json. */
describe('multifd channel captures', () => {
  for (const c of fixtureIndex()) {
    for (const f of c.files.filter((x) => /\.multifd\d\.bin$/.test(x.file))) {
      const path = join(REAL, c.dir, f.file);
      const scan = f.scan as unknown as { init: { channel_id: number }; packets: Record<string, number> };
      it(`${c.dir}/${f.file}: round-trips byte-exactly`, () => {
        const r = roundtripSource(new FileSource(path), new FileSource(path));
        expect(r.error).toBeUndefined();
        expect(r.identical).toBe(true);
        expect(r.bytes).toBe(f.size);
      });
      it(`${c.dir}/${f.file}: packets, SYNC, normal and zero pages as the harness counted`, () => {
        const sum = new MultifdSummary();
        for (const rec of decodeMultifdChannel(new StreamReader(new FileSource(path)))) sum.add(rec);
        expect(sum.channelId).toBe(scan.init.channel_id);
        expect(sum.packets).toBe(scan.packets.packets);
        expect(sum.syncPackets).toBe(scan.packets.SYNC);
        expect(sum.normalPages).toBe(scan.packets.normal_pages);
        expect(sum.zeroPages).toBe(scan.packets.zero_pages_field);
      });
    }
  }
});
