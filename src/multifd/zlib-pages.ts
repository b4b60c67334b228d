import { createRequire } from 'node:module';
import type * as Pako from 'pako';
import { CompressedPages } from './compressed-pages.js';

/**
 * A channel's zlib stream (migration/multifd-zlib.c): one deflate stream per channel (zlib
 * format, from deflateInit), flushed with Z_SYNC_FLUSH at the end of each packet. pako is loaded
 * the first time a zlib channel needs it.
 */
export class ZlibPages extends CompressedPages {
  private readonly inflater: Pako.Inflate;
  private readonly syncFlush: Pako.FlushValues;

  constructor() {
    super();
    const pako = createRequire(import.meta.url)('pako') as typeof Pako;
    this.syncFlush = pako.constants.Z_SYNC_FLUSH;
    this.inflater = new pako.Inflate();
    this.inflater.onData = (chunk) => {
      // pako hands out bytes unless asked for text
      if (typeof chunk === 'string' || chunk instanceof ArrayBuffer) throw new Error('inflated data that is not bytes');
      this.take(chunk);
    };
  }

  protected feed(data: Uint8Array): void {
    if (!this.inflater.push(data, this.syncFlush) || this.inflater.err) throw new Error(this.inflater.msg);
  }
}
