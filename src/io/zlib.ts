/**
 * Node's zlib, loaded the first time a compressed page or cluster needs it: loading it (and
 * the stream modules it pulls in) was a tenth of a small command's start-up, and most runs
 * meet no compressed data at all.
 */
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';

let loaded: typeof Zlib | undefined;

export function zlib(): typeof Zlib {
  return (loaded ??= createRequire(import.meta.url)('node:zlib') as typeof Zlib);
}
