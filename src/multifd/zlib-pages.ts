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
    // it out and allocates a fresh 64 KiB one: 512 KiB of garbage a packet. Given the packet's
    // own buffer (with its spare byte: `room`), it writes the pages in place. Peak RSS of
    // validating the bench's 4-channel zlib set on one thread (in process): 111 -> 90 MiB from
    // writing in place alone; with two worker threads, 171-188 MiB before, 97-108 MiB with
    // this, the workers' young generation limit and 2 MiB channel readers.
    const strm = (this.inflater as unknown as { strm: PakoStream }).strm;
    const room = this.room;
    strm.output = room;
    strm.next_out = 0;
    strm.avail_out = room.length;
    if (!this.inflater.push(data, this.syncFlush) || this.inflater.err) throw new Error(this.inflater.msg);
  }
}
