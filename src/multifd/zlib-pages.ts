import { createRequire } from 'node:module';
import type * as Pako from 'pako';
import { CompressedPages } from './compressed-pages.js';

/** The output side of pako's z_stream (lib/zlib/zstream.js, as zlib's own), which its typings do not describe. */
interface PakoStream {
  output: Uint8Array;
  next_out: number;
  avail_out: number;
}

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
    // pako inflates into its stream's output buffer and, once that is full or flushed, hands
    // it out and allocates a fresh 64 KiB one: 512 KiB of garbage a packet, which let each
    // thread's memory grow by V8's external-memory allowance (about 64 MiB) before a
    // collection. Given the packet's own buffer, it writes the pages in place; only output
    // beyond them (a bad packet) gets a buffer of pako's, and is refused by `take`.
    const strm = (this.inflater as unknown as { strm: PakoStream }).strm;
    strm.output = this.out;
    strm.next_out = 0;
    strm.avail_out = this.out.length;
    if (!this.inflater.push(data, this.syncFlush) || this.inflater.err) throw new Error(this.inflater.msg);
  }
}
