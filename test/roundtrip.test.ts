import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeRecords, roundtripSource } from '../src/codec/open.js';
import { MemorySink } from '../src/io/sink.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import { countingSource, decodeFile, mainStreams, pcPausedWithZeroPages } from './helpers.js';

// pc-no-configuration: QEMU 10.0/11.1 crashed while writing it (fixtures/real/README.md,
// "Findings"); the file ends right after the ram SECTION_END. Everything else loaded in QEMU.
const TRUNCATED = 'pc-no-configuration.mig';

describe('every real recording round-trips byte-exactly', () => {
  for (const f of mainStreams().filter((x) => x.name !== TRUNCATED)) {
    it(`${f.version}/${f.name}`, () => {
      const r = roundtripSource(new FileSource(f.path), new FileSource(f.path));
      expect(r.error).toBeUndefined();
      expect(r.firstDifference).toBeUndefined();
      expect(r.identical).toBe(true);
      expect(r.bytes).toBe(readFileSync(f.path).length);
    });
  }

  it('also when every record is kept and encoded afterwards (copyData)', () => {
    const f = mainStreams().find((x) => x.version === 'qemu-11.1' && x.name === 'q35-devices-running.mig')!;
    const { records, error } = decodeFile(f.path);
    expect(error).toBeUndefined();
    const sink = new MemorySink();
    encodeRecords(records, sink);
    expect(Buffer.compare(Buffer.from(sink.bytes()), readFileSync(f.path))).toBe(0);
  });

  it('with a read buffer smaller than a page (every refill path runs)', () => {
    const f = mainStreams().find((x) => x.version === 'qemu-11.1' && x.name === 'pc-mapped-ram.mig')!;
    const bytes = new Uint8Array(readFileSync(f.path));
    const r = roundtripSource(new BufferSource(bytes), new BufferSource(bytes));
    expect(r.identical).toBe(true);
  });
});

describe('roundtrip reads its input once', () => {
  it('the second opening is read only for the record under way at each refill of the reader', () => {
    // pc-paused with a zero-page record (9 bytes, nothing written directly) sent 3,000,000 times
    // more: 27 MB of records whose encodings wait in the writer's buffer, over six refills
    const { bytes } = pcPausedWithZeroPages(3_000_000);
    const again = countingSource(bytes);
    const r = roundtripSource(new BufferSource(bytes), again.source);
    expect(r.identical).toBe(true);
    // what is written is compared before a refill moves the decoder's buffer (not when the
    // writer's buffer fills, by which time the input it holds has moved on)
    expect(again.asked()).toBeLessThanOrEqual(7 * 64);
  });
});

describe('the truncated 10.0/11.1 pc-no-configuration stream', () => {
  for (const f of mainStreams().filter((x) => x.name === TRUNCATED)) {
    it(`${f.version}: decodes up to the end, then fails with a truncation error at the file size`, () => {
      const size = readFileSync(f.path).length;
      const { records, error } = decodeFile(f.path);
      expect(error?.code).toBe('truncated');
      expect(error?.offset).toBe(size);
      expect(error?.message).toContain('QEMU_VM_SECTION_FOOTER');
      // the ram SECTION_END payload was decoded completely, up to its EOS
      const last = records[records.length - 1];
      expect(last).toMatchObject({ kind: 'ram', op: 'eos' });
      expect(last.offset + last.length).toBe(size);
      expect(records.some((r) => r.kind === 'configuration')).toBe(false);
    });
  }
});

describe('the comparison itself', () => {
  it('reports the first byte where the re-encoded records differ from the input', async () => {
    const { CompareSink, StreamWriter } = await import('../src/io/sink.js');
    const { MainChannelEncoder } = await import('../src/codec/encode.js');
    const f = mainStreams().find((x) => x.version === 'qemu-11.1' && x.name === 'pc-paused.mig')!;
    const { records } = decodeFile(f.path);
    const page = records.find((r) => r.kind === 'ram' && r.op === 'page');
    if (page?.kind !== 'ram' || page.op !== 'page') throw new Error('no page');
    const data = page.data.slice();
    data[100] ^= 0xff;
    const edited = records.map((r) => (r === page ? { ...page, data } : r));
    const sink = new CompareSink(new FileSource(f.path));
    const enc = new MainChannelEncoder(new StreamWriter(sink));
    for (const r of edited) enc.write(r);
    enc.finish();
    expect(sink.finish()).toBe(page.offset + page.length - 4096 + 100);
  });
});
