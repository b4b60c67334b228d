/**
 * Pages carried by multifd channels, for `--ram extract` of a multifd migration: each RAM
 * packet names its RAMBlock and lists the offsets of its normal pages (whose data follow
 * the packet, nocomp) and of its zero pages (9.0+). Rounds end at SYNC packets; a page sent
 * again in a later round must win, so rounds are applied in order across all channels.
 */
import type { ByteSource } from '../io/source.js';
import { StreamReader } from '../io/reader.js';
import { MULTIFD_FLAG_COMPRESSION_MASK, MultifdFlag } from '../../grammar/multifd.js';
import { cString, decodeMultifdChannel } from '../multifd/codec.js';
import type { CompressedPages } from '../multifd/compressed-pages.js';
import { PAGE_COMPRESSIONS, type PageCompression } from '../multifd/page-compressions.js';

export interface PageWrite {
  block: string;
  addr: number;
  /** undefined: a zero page */
  data?: Uint8Array;
}

export interface MultifdRamResult {
  pages: number;
  zeroPages: number;
  /** of `pages`: those decompressed from zstd packets */
  zstdPages: number;
  /** of `pages`: those inflated from zlib packets */
  zlibPages: number;
  /** packets whose pages are compressed by a method not read here (qpl, uadk, qatzip), or whose zstd or zlib data did not decompress to their pages: not extracted */
  compressedPackets: number;
}

/** Calls `put` for every page of every channel, round by round. Page data is only valid during the call. */
export function forEachMultifdPage(
  channels: ByteSource[],
  pageSize: number,
  zeroPagesKnown: boolean,
  put: (p: PageWrite) => void,
): MultifdRamResult {
  const result: MultifdRamResult = { pages: 0, zeroPages: 0, zstdPages: 0, zlibPages: 0, compressedPackets: 0 };
  const iters = channels.map((src) => roundIterator(src, pageSize, zeroPagesKnown, result));
  // one round of every channel, then the next round
  for (;;) {
    let any = false;
    for (const it of iters) {
      const r = it.next(put);
      any ||= r;
    }
    if (!any) return result;
  }
}

interface RoundIterator {
  /** applies the channel's next round; false when the channel is exhausted */
  next(put: (p: PageWrite) => void): boolean;
}

function roundIterator(
  src: ByteSource,
  pageSize: number,
  zeroPagesKnown: boolean,
  result: MultifdRamResult,
): RoundIterator {
  const records = decodeMultifdChannel(new StreamReader(src), pageSize);
  let done = false;
  // the channel's compressed stream (one method per migration): its packets decompress in turn
  let stream: CompressedPages | undefined;
  return {
    next(put) {
      if (done) return false;
      let block = '';
      let offsets: DataView | undefined;
      let normal = 0;
      let page = 0;
      let skip = false;
      /** the packet's method, when its pages are read here */
      let compressed: PageCompression | undefined;
      for (;;) {
        const n = records.next();
        if (n.done) {
          done = true;
          return true;
        }
        const rec = n.value;
        if (rec.kind === 'multifd_packet') {
          const flags = rec.header.flags;
          normal = rec.fields.normalPages;
          const zero = zeroPagesKnown ? rec.fields.zeroPages : 0;
          block = cString(rec.fields.ramblock.subarray(0, 255));
          offsets = new DataView(rec.offsets.buffer, rec.offsets.byteOffset, rec.offsets.byteLength);
          page = 0;
          const method = flags & MULTIFD_FLAG_COMPRESSION_MASK;
          compressed = normal === 0 || stream?.broken ? undefined : PAGE_COMPRESSIONS.get(method);
          skip = method !== 0 && normal > 0 && !compressed;
          if (skip) result.compressedPackets++;
          for (let i = normal; i < normal + zero; i++) {
            put({ block, addr: Number(offsets.getBigUint64(i * 8)) });
            result.zeroPages++;
          }
          if (flags & MultifdFlag.MULTIFD_FLAG_SYNC && normal === 0) return true; // end of a round
        } else if (rec.kind === 'multifd_payload' && offsets && !skip) {
          let data: Uint8Array | undefined = rec.data;
          if (compressed) {
            // a packet's compressed data is one payload record (its next_packet_size)
            stream ??= compressed.open();
            data = stream.packet(rec.data, normal * pageSize);
            if (!data) {
              result.compressedPackets++;
              continue;
            }
          }
          for (let at = 0; at + pageSize <= data.length && page < normal; at += pageSize, page++) {
            put({ block, addr: Number(offsets.getBigUint64(page * 8)), data: data.subarray(at, at + pageSize) });
            result.pages++;
            if (compressed?.name === 'zstd') result.zstdPages++;
            if (compressed?.name === 'zlib') result.zlibPages++;
          }
        } else if (rec.kind === 'multifd_device_state') {
          offsets = undefined;
        }
      }
    },
  };
}
