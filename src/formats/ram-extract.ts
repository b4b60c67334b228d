/**
 * `dump --ram extract:DIR`: one file per RAMBlock with the guest memory the stream
 * carries, like analyze-migration.py -x (block names with '/' become subdirectories).
 * Unlike that script it applies XBZRLE deltas and inflates COMPRESS_PAGE pages.
 */
import { makeDirs } from '../io/make-dirs.js';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { zlib } from '../io/zlib.js';
import type { MainRecord } from '../model/records.js';
import { applyXbzrle } from '../ram/xbzrle.js';

export class RamExtractor {
  private files = new Map<string, number>();
  private scratch: Uint8Array;

  constructor(
    private readonly dir: string,
    private readonly pageSize: number,
  ) {
    this.scratch = new Uint8Array(pageSize);
    makeDirs(dir);
  }

  add(rec: MainRecord): void {
    if (rec.kind === 'ram_block') {
      const path = join(this.dir, rec.idstr.replace(/^\/+/, ''));
      makeDirs(dirname(path));
      const fd = openSync(path, 'w+');
      ftruncateSync(fd, rec.usedLength);
      this.files.set(rec.idstr, fd);
      return;
    }
    if (rec.kind === 'mapped_ram_page') {
      if (rec.present) this.put(rec.block, rec.index * this.pageSize, rec.data);
      return;
    }
    if (rec.kind !== 'ram') return;
    switch (rec.op) {
      case 'page':
        this.put(rec.block, rec.addr, rec.data);
        break;
      case 'zero':
        this.scratch.fill(rec.fill);
        this.put(rec.block, rec.addr, this.scratch);
        break;
      case 'xbzrle': {
        const fd = this.files.get(rec.block);
        if (fd === undefined) return;
        this.scratch.fill(0);
        readSync(fd, this.scratch, 0, this.pageSize, rec.addr);
        applyXbzrle(rec.data, this.scratch);
        this.put(rec.block, rec.addr, this.scratch);
        break;
      }
      case 'compress_page':
        this.put(rec.block, rec.addr, zlib().inflateSync(rec.data));
        break;
      default:
        break;
    }
  }

  /** A page from elsewhere (multifd channels); no data = a zero page. */
  putPage(block: string, addr: number, data?: Uint8Array): void {
    if (data) this.put(block, addr, data);
    else {
      this.scratch.fill(0);
      this.put(block, addr, this.scratch);
    }
  }

  private put(block: string, addr: number, data: Uint8Array): void {
    const fd = this.files.get(block);
    if (fd !== undefined) writeSync(fd, data, 0, data.length, addr);
  }

  close(): void {
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
  }
}
