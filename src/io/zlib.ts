/**
 * Node's zlib, loaded the first time a compressed page or cluster needs it: loading it (and
 * the stream modules it pulls in) cost every command's start-up some milliseconds (stats of a
 * 5 KB file went from 1.34x to 1.27x bare node without it, in one bench run), and most runs
 * meet no compressed data at all.
 */
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';

let loaded: typeof Zlib | undefined;

export function zlib(): typeof Zlib {
  return (loaded ??= createRequire(import.meta.url)('node:zlib') as typeof Zlib);
}
