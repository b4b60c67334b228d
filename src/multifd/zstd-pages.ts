import { zstdDecoder, type ZstdDecoder } from '../io/zstd.js';

/**
 * A channel's zstd stream (migration/multifd-zstd.c): the source compresses every page of a
 * channel into one zstd stream, flushed at the end of each packet, so a packet's data
 * decompresses to its pages given everything the channel sent before. Output beyond the
 * packet's pages stops the stream (a packet cannot make it allocate more than its pages).
 */
export class ZstdPages {
  private readonly decoder: ZstdDecoder;
  private out: Uint8Array = new Uint8Array(0);
  private got = 0;
  /** the stream could not be followed (bad data, or more than the packet's pages): no more pages from it */
  broken = false;

  constructor() {
    this.decoder = zstdDecoder((chunk) => {
      if (this.got + chunk.length > this.out.length) throw TOO_MUCH;
      this.out.set(chunk, this.got);
      this.got += chunk.length;
    });
  }

  /** The packet's `bytes` of pages from its compressed data, or undefined once the stream is broken. */
  packet(data: Uint8Array, bytes: number): Uint8Array | undefined {
    if (this.broken) return undefined;
    this.out = new Uint8Array(bytes);
    this.got = 0;
    try {
      this.decoder.push(data);
    } catch {
      this.broken = true;
      return undefined;
    }
    if (this.got !== bytes) this.broken = true;
    return this.broken ? undefined : this.out;
  }
}
/** Thrown by the output handler when a packet gives more than its pages: the decoder stops there. */
const TOO_MUCH = new Error("more than the packet's pages");
