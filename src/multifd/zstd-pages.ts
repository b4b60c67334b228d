import { zstdDecoder, type ZstdDecoder } from '../io/zstd.js';
import { CompressedPages } from './compressed-pages.js';

/** A channel's zstd stream (migration/multifd-zstd.c), flushed at the end of every packet. */
export class ZstdPages extends CompressedPages {
  private readonly decoder: ZstdDecoder = zstdDecoder(this.take);

  protected feed(data: Uint8Array): void {
    this.decoder.push(data);
  }
}
