import { describe, expect, it } from 'vitest';
import { MULTIFD_MAGIC, MULTIFD_PACKET_BYTES_OF_PAGES, MULTIFD_VERSION, MultifdFlag } from '../grammar/multifd.js';
import { encodeToBytes } from '../src/codec/open.js';
import { forEachMultifdPage, type PageWrite } from '../src/formats/multifd-ram.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BufferSource, FileSource } from '../src/io/source.js';
import { StreamReader } from '../src/io/reader.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import { REAL, ROOT } from './helpers.js';
import type { MultifdRecord } from '../src/model/multifd-records.js';

// Pages of multifd RAM packets, from channels built packet by packet as the spec describes them
// (../shared/spec/vfio-and-multifd.md §8: MultiFDPacket_t lists normal_pages offsets, then
// zero_pages offsets (9.0+); nocomp page data follow the packet in offset order; a packet with
// MULTIFD_FLAG_SYNC and no pages ends a round). The expected pages are the ones put in.

const PAGE = 4096;
const SLOTS = MULTIFD_PACKET_BYTES_OF_PAGES / PAGE;
const r0 = { offset: 0, length: 0 };

function name256(s: string): Uint8Array {
  const b = new Uint8Array(256);
  b.set(Buffer.from(s, 'latin1'));
  return b;
}

function init(id: number): MultifdRecord {
  return {
    kind: 'multifd_init',
    ...r0,
    fields: {
      magic: MULTIFD_MAGIC,
      version: MULTIFD_VERSION,
      uuid: new Uint8Array(16),
      id,
      unused: new Uint8Array(39),
    },
  };
}

let num = 0n;
/** A RAM packet of `block` with the given normal pages (address, fill byte) and zero pages. */
function packet(block: string, normal: [number, number][], zero: number[], flags = 0): MultifdRecord[] {
  const offsets = new Uint8Array(SLOTS * 8);
  const dv = new DataView(offsets.buffer);
  [...normal.map(([a]) => a), ...zero].forEach((a, i) => dv.setBigUint64(i * 8, BigInt(a)));
  const data = new Uint8Array(normal.length * PAGE);
  normal.forEach(([, fill], i) => data.fill(fill, i * PAGE, (i + 1) * PAGE));
  const out: MultifdRecord[] = [
    {
      kind: 'multifd_packet',
      ...r0,
      header: { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, flags },
      fields: {
        pagesAlloc: SLOTS,
        normalPages: normal.length,
        nextPacketSize: flags & 0x3e ? data.length : 0,
        packetNum: num++,
        zeroPages: zero.length,
        unused: new Uint8Array(28),
        ramblock: name256(block),
      },
      offsets,
    },
  ];
  if (data.length) out.push({ kind: 'multifd_payload', ...r0, data });
  return out;
}

const sync = (): MultifdRecord[] => packet('', [], [], MultifdFlag.MULTIFD_FLAG_SYNC);

function channel(...recs: MultifdRecord[][]): BufferSource {
  return new BufferSource(encodeToBytes([init(0), ...recs.flat()]));
}

/** What forEachMultifdPage puts, with page data reduced to its fill byte (or 'zero'). */
function run(
  channels: BufferSource[],
  zeroPagesKnown = true,
): { puts: string[]; result: ReturnType<typeof forEachMultifdPage> } {
  const puts: string[] = [];
  const result = forEachMultifdPage(channels, PAGE, zeroPagesKnown, (p: PageWrite) => {
    if (p.data) {
      expect(p.data.length).toBe(PAGE);
      expect(p.data.every((x) => x === p.data![0])).toBe(true);
    }
    puts.push(`${p.block}@${p.addr.toString(16)}=${p.data ? p.data[0].toString(16) : 'zero'}`);
  });
  return { puts, result };
}

describe('multifd RAM pages', () => {
  it('normal pages with their data, then zero pages, in packet order; counts of each', () => {
    const { puts, result } = run([
      channel(
        packet(
          'pc.ram',
          [
            [0x1000, 0xaa],
            [0x3000, 0xbb],
          ],
          [0x5000, 0x6000],
        ),
        sync(),
      ),
    ]);
    expect(puts).toEqual(['pc.ram@5000=zero', 'pc.ram@6000=zero', 'pc.ram@1000=aa', 'pc.ram@3000=bb']);
    expect(result).toEqual({ pages: 2, zeroPages: 2, zstdPages: 0, zlibPages: 0, compressedPackets: 0 });
  });

  it('before 9.0 the zero-page count is not there: the slots after the normal pages are not pages', () => {
    const { puts, result } = run([channel(packet('pc.ram', [[0x1000, 0xaa]], [0x5000]), sync())], false);
    expect(puts).toEqual(['pc.ram@1000=aa']);
    expect(result).toEqual({ pages: 1, zeroPages: 0, zstdPages: 0, zlibPages: 0, compressedPackets: 0 });
  });

  it('rounds are applied in order across channels: a page sent again in a later round wins', () => {
    // channel 0 sends 0x1000 in round 1 and zeroes it in round 2; channel 1 sends 0x2000 twice
    const a = channel(packet('pc.ram', [[0x1000, 0x11]], []), sync(), packet('pc.ram', [], [0x1000]), sync());
    const b = channel(packet('pc.ram', [[0x2000, 0x21]], []), sync(), packet('pc.ram', [[0x2000, 0x22]], []), sync());
    const { puts, result } = run([a, b]);
    expect(puts).toEqual(['pc.ram@1000=11', 'pc.ram@2000=21', 'pc.ram@1000=zero', 'pc.ram@2000=22']);
    expect(result).toEqual({ pages: 3, zeroPages: 1, zstdPages: 0, zlibPages: 0, compressedPackets: 0 });
  });

  it('a channel with more rounds than another goes on alone; a channel without SYNC is one round', () => {
    const a = channel(
      packet('pc.ram', [[0x1000, 0x11]], []),
      sync(),
      packet('pc.ram', [[0x1000, 0x12]], []),
      sync(),
      packet('pc.ram', [[0x1000, 0x13]], []),
    );
    const b = channel(packet('other', [[0x0, 0x31]], []));
    const { puts } = run([a, b]);
    expect(puts).toEqual(['pc.ram@1000=11', 'other@0=31', 'pc.ram@1000=12', 'pc.ram@1000=13']);
  });

  it('a SYNC packet that carries pages does not end the round', () => {
    const a = channel(
      packet('pc.ram', [[0x1000, 0x11]], [], MultifdFlag.MULTIFD_FLAG_SYNC),
      packet('pc.ram', [[0x2000, 0x12]], []),
      sync(),
      packet('pc.ram', [[0x3000, 0x13]], []),
    );
    const b = channel(packet('pc.ram', [[0x4000, 0x21]], []), sync(), packet('pc.ram', [[0x5000, 0x22]], []));
    const { puts } = run([a, b]);
    expect(puts).toEqual(['pc.ram@1000=11', 'pc.ram@2000=12', 'pc.ram@4000=21', 'pc.ram@3000=13', 'pc.ram@5000=22']);
  });

  // zlib (and qpl, uadk, qatzip) data are not read; a zstd packet whose data is not zstd (here:
  // the plain page bytes) counts the same (zstd channels that decompress: the next describe)
  for (const [method, flag] of [
    ['zlib', MultifdFlag.MULTIFD_FLAG_ZLIB],
    ['zstd', MultifdFlag.MULTIFD_FLAG_ZSTD],
  ] as const)
    it(`compressed packets (${method}): their zero pages are known, data that cannot be read are not extracted`, () => {
      const a = channel(
        packet(
          'pc.ram',
          [
            [0x1000, 0x11],
            [0x2000, 0x12],
          ],
          [0x3000],
          flag,
        ),
        packet('pc.ram', [], [0x4000], flag),
        sync(),
      );
      const { puts, result } = run([a]);
      expect(puts).toEqual(['pc.ram@3000=zero', 'pc.ram@4000=zero']);
      // a compressed packet with no normal pages has nothing left out
      expect(result).toEqual({ pages: 0, zeroPages: 2, zstdPages: 0, zlibPages: 0, compressedPackets: 1 });
    });

  it('a device-state packet between RAM packets: its payload is not RAM', () => {
    const dev: MultifdRecord[] = [
      {
        kind: 'multifd_device_state',
        ...r0,
        header: { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, flags: MultifdFlag.MULTIFD_FLAG_DEVICE_STATE },
        fields: { idstr: name256('0000:00:02.0/vfio'), instanceId: 0, nextPacketSize: PAGE },
      },
      { kind: 'multifd_payload', ...r0, data: new Uint8Array(PAGE).fill(0x77) },
    ];
    const a = channel(packet('pc.ram', [[0x1000, 0x11]], []), dev, packet('pc.ram', [[0x2000, 0x12]], []), sync());
    const { puts } = run([a]);
    expect(puts).toEqual(['pc.ram@1000=11', 'pc.ram@2000=12']);
  });

  it('the block name ends at its NUL; stale bytes after it are not part of it', () => {
    const p = packet('pc.ram', [[0x1000, 0x11]], []);
    const pk = p[0];
    if (pk.kind !== 'multifd_packet') throw new Error('test set-up');
    pk.fields.ramblock.set(Buffer.from('stale'), 100);
    const { puts } = run([channel(p, sync())]);
    expect(puts).toEqual(['pc.ram@1000=11']);
  });
});

/** The packets of the channel files `files` whose flags name compression `flag` and carry pages, and their pages. */
function compressedPackets(files: string[], flag: number): { packets: number; pages: number } {
  let packets = 0;
  let pages = 0;
  for (const f of files)
    for (const r of decodeMultifdChannel(new StreamReader(new FileSource(f)), PAGE))
      if (r.kind === 'multifd_packet' && r.header.flags & flag && r.fields.normalPages) {
        packets++;
        pages += r.fields.normalPages;
      }
  return { packets, pages };
}

/**
 * zstd channels (migration/multifd-zstd.c: one zstd stream a channel, flushed at the end of
 * every packet), recorded by QEMU 7.2 and 11.1 with multifd-compression zstd. The pages they
 * give are checked against QEMU 7.2's own load of the 7.2 recording in test/qemu.test.ts; here,
 * that every packet decompresses to exactly its pages, and what a broken stream does.
 */
describe('multifd zstd channels', () => {
  const channelsOf = (version: string): string[] =>
    [0, 1].map((i) => join(REAL, `qemu-${version}`, `pc-multifd-zstd-tcp.multifd${i}.bin`));

  for (const version of ['7.2', '11.1']) {
    it(`QEMU ${version}: every zstd packet decompresses to its pages`, () => {
      const files = channelsOf(version);
      const expected = compressedPackets(files, MultifdFlag.MULTIFD_FLAG_ZSTD);
      expect(expected.packets).toBeGreaterThan(3);
      const zeroPagesKnown = version !== '7.2';
      const res = forEachMultifdPage(
        files.map((f) => new FileSource(f)),
        PAGE,
        zeroPagesKnown,
        () => {},
      );
      expect(res.compressedPackets).toBe(0);
      expect(res.zstdPages).toBe(expected.pages);
      expect(res.pages).toBe(expected.pages);
    });
  }

  it('QEMU 7.2 with multifd-compression zlib (fixtures/recorded-7.2/pc-multifd-zlib-tap): every zlib packet inflates to its pages', () => {
    const base = join(ROOT, 'fixtures', 'recorded-7.2', 'pc-multifd-zlib-tap');
    const files = [0, 1].map((i) => `${base}.multifd${i}.bin`);
    const { packets, pages } = compressedPackets(files, MultifdFlag.MULTIFD_FLAG_ZLIB);
    expect(packets).toBeGreaterThan(3);
    const res = forEachMultifdPage(
      files.map((f) => new FileSource(f)),
      PAGE,
      false,
      () => {},
    );
    expect(res).toEqual({ pages, zeroPages: 0, zstdPages: 0, zlibPages: pages, compressedPackets: 0 });
  });

  it('a packet whose zlib data is damaged: its pages and the rest of that channel are left out, counted, nothing thrown', () => {
    const base = join(ROOT, 'fixtures', 'recorded-7.2', 'pc-multifd-zlib-tap');
    const ch0 = new Uint8Array(readFileSync(`${base}.multifd0.bin`));
    const recs = [...decodeMultifdChannel(new StreamReader(new BufferSource(ch0)), PAGE)];
    const payloads = recs.filter((r) => r.kind === 'multifd_payload');
    const first = payloads[0];
    expect(first).toBeDefined();
    // the zlib header's check bits (CMF*256+FLG must be a multiple of 31): one flipped bit breaks it
    ch0[first?.offset ?? 0] ^= 0x01;
    const res = forEachMultifdPage([new BufferSource(ch0)], PAGE, false, () => {});
    expect(res.zlibPages).toBe(0);
    expect(res.pages).toBe(0);
    // every packet of the channel with pages: the broken one and each after it
    expect(res.compressedPackets).toBe(payloads.length);
  });

  it('a packet whose zstd data is damaged: its pages and the rest of that channel are left out, counted, nothing thrown', () => {
    const [ch0, ch1] = channelsOf('7.2').map((f) => new Uint8Array(readFileSync(f)));
    // damage the first compressed payload of channel 0 (its first byte after the packet)
    const recs = [...decodeMultifdChannel(new StreamReader(new BufferSource(ch0)), PAGE)];
    const first = recs.findIndex(
      (r) => r.kind === 'multifd_packet' && r.header.flags & MultifdFlag.MULTIFD_FLAG_ZSTD && r.fields.normalPages,
    );
    const payload = recs[first + 1];
    if (payload?.kind !== 'multifd_payload') throw new Error('test set-up');
    const bad = ch0.slice();
    bad.fill(0xff, payload.offset, payload.offset + 16);
    const good = forEachMultifdPage([new BufferSource(ch0), new BufferSource(ch1)], PAGE, false, () => {});
    const res = forEachMultifdPage([new BufferSource(bad), new BufferSource(ch1)], PAGE, false, () => {});
    const firstChannel = compressedPackets([channelsOf('7.2')[0] ?? ''], MultifdFlag.MULTIFD_FLAG_ZSTD);
    expect(res.compressedPackets).toBe(firstChannel.packets);
    expect(res.pages).toBe(good.pages - firstChannel.pages);
  });
});
