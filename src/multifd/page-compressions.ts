import { MultifdFlag } from '../../grammar/multifd.js';
import type { CompressedPages } from './compressed-pages.js';
import { ZlibPages } from './zlib-pages.js';
import { ZstdPages } from './zstd-pages.js';

/** A multifd compression whose packets are decompressed here: its name and a channel's stream of it. */
export interface PageCompression {
  name: 'zstd' | 'zlib';
  open(): CompressedPages;
}

/** By the packet's compression flag (MULTIFD_FLAG_ZSTD, MULTIFD_FLAG_ZLIB); the others (qpl, uadk, qatzip) are not read. */
export const PAGE_COMPRESSIONS: ReadonlyMap<number, PageCompression> = new Map([
  [MultifdFlag.MULTIFD_FLAG_ZSTD, { name: 'zstd', open: () => new ZstdPages() }],
  [MultifdFlag.MULTIFD_FLAG_ZLIB, { name: 'zlib', open: () => new ZlibPages() }],
]);
