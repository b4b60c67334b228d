/**
 * zstd decompression (fzstd: pure JavaScript, decompression only). Loaded the first time a
 * zstd input needs it: every other run would pay its start-up cost for nothing.
 */
import { createRequire } from 'node:module';
import type * as Fzstd from 'fzstd';

export type ZstdDecoder = InstanceType<typeof Fzstd.Decompress>;

/** A streaming zstd decoder whose output goes to `onData` (a view: copy what you keep). */
export function zstdDecoder(onData: (chunk: Uint8Array) => void): ZstdDecoder {
  const fzstd = createRequire(import.meta.url)('fzstd') as typeof Fzstd;
  return new fzstd.Decompress(onData);
}
