/**
 * The return path (destination to source) decoded as it passes through the tap. Its messages
 * are small and few (PONGs, page requests, SHUT), so they are decoded here, on the relay's
 * thread: the bytes since the last whole message are kept, and each chunk decodes the
 * messages it completes. A message still arriving is a `truncated` error of the decoder, which
 * only means "wait for more".
 */
import { StreamReader } from '../io/reader.js';
import { BufferSource } from '../io/source.js';
import { StreamError } from '../model/errors.js';
import type { ReturnPathRecord } from '../model/returnpath-records.js';
import { decodeReturnPath } from '../returnpath/codec.js';

/** A return path whose unfinished message holds more than this stops being decoded (the relay goes on). */
const MAX_PENDING = 64 << 20;

export class ReturnPathWatcher {
  private pending: Uint8Array = new Uint8Array(0);
  /** channel offset of pending[0] */
  private base = 0;
  /** why decoding stopped (a message QEMU never sends, or one too large to hold) */
  failed: string | undefined;

  /** The messages this chunk completes. */
  push(chunk: Uint8Array): ReturnPathRecord[] {
    if (this.failed) return [];
    const joined = new Uint8Array(this.pending.length + chunk.length);
    joined.set(this.pending);
    joined.set(chunk, this.pending.length);
    const out: ReturnPathRecord[] = [];
    let consumed = this.base;
    try {
      // a reader sized to what is there: this runs for every chunk
      const capacity = Math.min(Math.max(joined.length, 4096), 4 << 20);
      const r = new StreamReader(new BufferSource(joined, 'return path', this.base), capacity, this.base);
      for (const rec of decodeReturnPath(r)) {
        out.push(rec);
        consumed = rec.offset + rec.length;
      }
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      if (e.code !== 'truncated') this.failed = e.message;
    }
    this.pending = joined.subarray(consumed - this.base);
    this.base = consumed;
    if (this.pending.length > MAX_PENDING) this.failed = `a message of over ${MAX_PENDING} bytes`;
    return out;
  }
}

/** A message's fields as JSON can hold them: 64-bit values as numbers when exact, else as decimal strings. */
export function messageFields(rec: ReturnPathRecord): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(rec.fields ?? {})) {
    if (typeof v === 'bigint') out[k] = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    else if (typeof v === 'number' || typeof v === 'string') out[k] = v;
  }
  return out;
}
