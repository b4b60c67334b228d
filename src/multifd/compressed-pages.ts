/**
 * A multifd channel's compressed stream (zstd or zlib): the source compresses every page of a
 * channel into one stream, flushed at the end of each packet, and the destination checks that
 * each packet decompresses to exactly its pages. So a packet's data decompresses to its pages
 * given everything the channel sent before. Output beyond the packet's pages stops the stream
 * (a packet cannot make it allocate more than its pages); after a failure no more pages come.
 */
export abstract class CompressedPages {
  /** where the packet's pages go: `feed` may have the decompressor write there itself */
  protected out: Uint8Array = new Uint8Array(0);
  private got = 0;
  /** the stream could not be followed (bad data, or more than the packet's pages): no more pages from it */
  broken = false;

  /** Decompress the packet's data, handing each piece of output to `take` (which throws when there is too much). */
  protected abstract feed(data: Uint8Array): void;

  /** The decompressor's output, as it comes. */
  protected readonly take = (chunk: Uint8Array): void => {
    if (this.got + chunk.length > this.out.length) throw TOO_MUCH;
    // output the decompressor wrote in place (ZlibPages) is where it belongs already
    const inPlace = chunk.buffer === this.out.buffer && chunk.byteOffset === this.out.byteOffset + this.got;
    if (!inPlace) this.out.set(chunk, this.got);
    this.got += chunk.length;
  };

  /** the pages' buffer, kept from packet to packet (a packet's pages are looked at before the next one is read), and a byte more */
  private pages: Uint8Array = new Uint8Array(0);

  /**
   * The packet's pages and one byte more, for a decompressor that writes in place (ZlibPages):
   * a packet that fills its pages exactly still leaves room, so the decompressor does not take
   * a buffer of its own to find out whether more output follows. Output in the spare byte is
   * refused by `take`, as any output past the pages is.
   */
  protected get room(): Uint8Array {
    return this.pages.subarray(0, this.out.length + 1);
  }

  /**
   * The packet's `bytes` of pages from its compressed data, or undefined once the stream is
   * broken. The pages are a view that the next packet overwrites.
   */
  packet(data: Uint8Array, bytes: number): Uint8Array | undefined {
    if (this.broken) return undefined;
    if (this.pages.length < bytes + 1) this.pages = new Uint8Array(bytes + 1);
    this.out = this.pages.subarray(0, bytes);
    this.got = 0;
    try {
      this.feed(data);
    } catch {
      this.broken = true;
      return undefined;
    }
    if (this.got !== bytes) this.broken = true;
    return this.broken ? undefined : this.out;
  }
}

/** Thrown by the output handler when a packet gives more than its pages: the decompressor stops there. */
const TOO_MUCH = new Error("more than the packet's pages");
