/**
 * A gzip (or zlib) file read as the bytes it holds: inflated as the reader asks for them,
 * a small compressed chunk at a time (a chunk of zero pages can inflate a thousandfold), so
 * memory stays bounded whatever the size. Sequential, like a pipe: the vmdescription is
 * taken when it arrives, at the end.
 */
import { createRequire } from 'node:module';
import type * as Pako from 'pako';

/** pako is loaded for a gzip input only (start-up time of every other run). */
const loadPako = (): typeof Pako => createRequire(import.meta.url)('pako') as typeof Pako;
import { closeSync, openSync, readSync } from 'node:fs';
import type { ByteSource } from './source.js';

const COMPRESSED_CHUNK = 16 << 10;

export class InflateSource implements ByteSource {
  readonly seekable = false;
  readonly size = undefined;
  private fd: number;
  private filePos = 0;
  private done = false;
  private queue: Uint8Array[] = [];
  /** absolute offset (in the inflated bytes) of queue[0][0] */
  private queuePos = 0;
  private inflater: Pako.Inflate = new (loadPako().Inflate)();

  private ended = false;
  readonly libvirtBodyInflated: boolean = false;

  /**
   * `body`: where the compressed bytes start in the file, and the bytes before them, given as
   * they are (a libvirt save image: its header and domain XML, then a gzip body).
   */
  constructor(
    readonly name: string,
    body?: { offset: number; prefix: Uint8Array },
  ) {
    this.fd = openSync(name, 'r');
    if (body) {
      this.filePos = body.offset;
      this.queue.push(body.prefix);
      this.libvirtBodyInflated = true;
    }
    this.inflater.onData = (chunk): void => {
      if (chunk instanceof Uint8Array) this.queue.push(chunk);
    };
    this.inflater.onEnd = (): void => {
      this.ended = true;
    };
  }

  private refill(): boolean {
    if (this.done) return false;
    const buf = new Uint8Array(COMPRESSED_CHUNK);
    const n = readSync(this.fd, buf, 0, buf.length, this.filePos);
    this.filePos += n;
    this.inflater.push(buf.subarray(0, n), n === 0);
    if (this.inflater.err) throw new Error(`${this.name}: gzip data is corrupt (${this.inflater.msg})`);
    if (n === 0 || this.ended) this.done = true;
    return true;
  }

  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    for (;;) {
      // drop what lies before `at` (the reader never goes back)
      while (this.queue.length && this.queuePos + (this.queue[0]?.length ?? 0) <= at) {
        this.queuePos += this.queue[0]?.length ?? 0;
        this.queue.shift();
      }
      const head = this.queue[0];
      if (head && this.queuePos <= at) {
        const from = at - this.queuePos;
        const n = Math.min(length, head.length - from);
        into.set(head.subarray(from, from + n), intoOffset);
        return n;
      }
      if (!this.refill()) return 0;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
