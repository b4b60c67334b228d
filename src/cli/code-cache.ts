// Compiling the command's bundle is the largest part of a short run's start-up (11 ms of the
// 35 ms migstream adds to a bare `node` for `stats` of a small file). V8 can skip most of it with
// the code it compiled in an earlier run: Node 22 offers that as module.enableCompileCache(); on
// Node 20 it is vm.Script's cachedData, made at build time (scripts/bundle.ts runs each bundle
// once with MIGSTREAM_WRITE_CODE_CACHE set) and kept beside the bundle as BUNDLE.v8cache.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/**
 * V8's cache for `file`, unless the file changed after the cache was made. V8 itself rejects a
 * cache made by another V8 version or with other flags (the file is then compiled as usual), but
 * compares no more of the source than its length: an edited bundle must not meet its old cache.
 * (npm gives every file of a package one and the same time: a cache as old as its bundle is its own.)
 */
function cacheFor(file: string): Buffer | undefined {
  const cache = `${file}.v8cache`;
  try {
    return statSync(cache).mtimeMs >= statSync(file).mtimeMs ? readFileSync(cache) : undefined;
  } catch {
    return undefined;
  }
}

/** What a CommonJS wrapper function receives. */
type Wrapper = (
  exports: object,
  require: NodeJS.Require,
  module: { exports: object },
  filename: string,
  dirname: string,
) => void;

/**
 * Loads the CommonJS bundle `file` as require() would, compiled with its code cache when there is
 * a valid one. `done` is called once the run is over: with MIGSTREAM_WRITE_CODE_CACHE set it writes
 * the cache then, so that it holds every function the run compiled, not only the top level.
 */
export function loadBundle(file: string): { exports: unknown; usedCache: boolean; done(): void } {
  const source = readFileSync(file, 'utf8');
  const cachedData = cacheFor(file);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
  });
  const wrapper = script.runInThisContext() as Wrapper;
  const mod = { exports: {} };
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  return {
    exports: mod.exports,
    usedCache: cachedData !== undefined && !script.cachedDataRejected,
    done(): void {
      if (process.env.MIGSTREAM_WRITE_CODE_CACHE) writeFileSync(`${file}.v8cache`, script.createCachedData());
    },
  };
}
