import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdir -p, one level at a time. Node's recursive mkdirSync never returns for a path under a
 * directory such as /proc that refuses new entries with ENOENT; this fails with that error.
 */
export function makeDirs(dir: string): void {
  const path = resolve(dir);
  try {
    if (statSync(path).isDirectory()) return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const parent = dirname(path);
  if (parent !== path) makeDirs(parent);
  try {
    mkdirSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(path).isDirectory()) throw e;
  }
}
