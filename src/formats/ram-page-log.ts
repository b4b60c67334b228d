/**
 * The guest pages `--ram hex` (analyze-migration.py's `-m`) prints, kept at bounded memory.
 *
 * The script holds a dict of every page as hex text: three bytes of text per byte of guest RAM,
 * so a 2 GiB guest needs over 6 GiB. Here a page costs a few dozen bytes: its block, address
 * and where its last content can be read back (the input, when it can be re-read; otherwise a
 * spill file in the temporary directory). The hex is made one page at a time as it is written.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ByteSource } from '../io/source.js';

/** Where a page's content lives until it is printed (one byte per page). */
const Where = {
  /** a zero page, or a mapped-ram slot the bitmap leaves out: the script prints "Filled with 0x00" */
  ZeroFill: 0,
  Input: 1,
  Spill: 2,
} as const;

/** How much of the input (or spill file) one read brings back for `pages`. */
const READ_BACK_WINDOW = 1 << 20;

export interface PageContent {
  block: string;
  addr: number;
  /** undefined: the page is all zeroes (printed as "Filled with 0x00") */
  data: Uint8Array | undefined;
}

/** The input a dump reads, when its pages can be read again by offset. */
export interface RereadableInput {
  source: ByteSource;
  /** the input offset of a buffer a record carries, or undefined when it is not the reader's */
  offsetOf(data: Uint8Array): number | undefined;
}

export class RamPageLog {
  /** block name -> page address -> slot; a slot is a page in the order it was first sent */
  private readonly slotOf = new Map<string, Map<number, number>>();
  private blocks: string[] = [];
  private addr = new Float64Array(1024);
  private at = new Float64Array(1024);
  private length = new Uint32Array(1024);
  private where = new Uint8Array(1024);
  private count = 0;
  private spill: { dir: string; fd: number; size: number } | undefined;
  /** the bytes `pages` read back last: [start, end) of the input or the spill file (where) */
  private readonly window = { where: -1, start: 0, end: 0, buf: new Uint8Array(0) };

  /** `spillParent`: where the spill file's directory is made (the system's temporary directory) */
  constructor(
    private readonly input?: RereadableInput,
    private readonly spillParent = tmpdir(),
  ) {}

  /** A page was sent (or zero-filled, data undefined): it keeps its first place and takes this content. */
  put(block: string, addr: number, data: Uint8Array | undefined): void {
    let pages = this.slotOf.get(block);
    if (!pages) this.slotOf.set(block, (pages = new Map<number, number>()));
    let slot = pages.get(addr);
    if (slot === undefined) {
      slot = this.count++;
      pages.set(addr, slot);
      this.grow();
      this.blocks[slot] = block;
      this.addr[slot] = addr;
    }
    if (!data) {
      this.where[slot] = Where.ZeroFill;
      return;
    }
    const resentInPlace = this.where[slot] === Where.Spill && this.length[slot] === data.length;
    this.length[slot] = data.length;
    if (resentInPlace) {
      // a page sent again (a dirty page of a later round): its spilled bytes are overwritten
      this.writeSpill(data, this.at[slot] ?? 0);
      return;
    }
    const inInput = this.input?.source.seekable ? this.input.offsetOf(data) : undefined;
    if (inInput !== undefined) {
      this.where[slot] = Where.Input;
      this.at[slot] = inInput;
    } else {
      this.where[slot] = Where.Spill;
      this.at[slot] = this.append(data);
    }
  }

  get size(): number {
    return this.count;
  }

  /**
   * Every page in first-sent order with its last content. Pages are read back a window at a time
   * (READ_BACK_WINDOW bytes from the first page that is not in the last one): pages sit one after
   * another in the input as a rule, and a read a page cost a tenth of a `--ram hex` dump's time
   * (256 MiB: 0.75 -> 0.67 s). Each page's data is valid until the next page is asked for.
   */
  *pages(): Generator<PageContent> {
    for (let slot = 0; slot < this.count; slot++) {
      const block = this.blocks[slot] ?? '';
      const addr = this.addr[slot] ?? 0;
      const where = this.where[slot] ?? Where.ZeroFill;
      if (where === Where.ZeroFill) {
        yield { block, addr, data: undefined };
        continue;
      }
      yield { block, addr, data: this.readBack(where, this.at[slot] ?? 0, this.length[slot] ?? 0) };
    }
  }

  /** Removes the spill file, if one was made. */
  close(): void {
    if (!this.spill) return;
    closeSync(this.spill.fd);
    rmSync(this.spill.dir, { recursive: true, force: true });
    this.spill = undefined;
  }

  /** The `n` bytes at `at` of the input or the spill file, from the window, read anew when they are not in it. */
  private readBack(where: number, at: number, n: number): Uint8Array {
    const w = this.window;
    if (w.where !== where || at < w.start || at + n > w.end) {
      const size = Math.max(n, READ_BACK_WINDOW);
      if (w.buf.length < size) w.buf = new Uint8Array(size);
      let done = 0;
      while (done < n) {
        const k =
          where === Where.Input
            ? (this.input?.source.read(w.buf, done, size - done, at + done) ?? 0)
            : readSync(this.spill?.fd ?? -1, w.buf, done, size - done, at + done);
        // the bytes were there when the page was decoded: a shorter read means the file changed
        if (k <= 0) throw new Error(`a page's bytes at ${at} could not be read back (the input changed?)`);
        done += k;
      }
      w.where = where;
      w.start = at;
      w.end = at + done;
    }
    return w.buf.subarray(at - w.start, at - w.start + n);
  }

  private append(data: Uint8Array): number {
    if (!this.spill) {
      const dir = mkdtempSync(join(this.spillParent, 'migstream-pages-'));
      this.spill = { dir, fd: openSync(join(dir, 'pages'), 'w+'), size: 0 };
    }
    const at = this.spill.size;
    this.writeSpill(data, at);
    this.spill.size += data.length;
    return at;
  }

  private writeSpill(data: Uint8Array, at: number): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.spill?.fd ?? -1, data, done, data.length - done, at + done);
  }

  private grow(): void {
    if (this.count <= this.addr.length) return;
    const n = this.addr.length * 2;
    this.addr = copyInto(new Float64Array(n), this.addr);
    this.at = copyInto(new Float64Array(n), this.at);
    this.length = copyInto(new Uint32Array(n), this.length);
    this.where = copyInto(new Uint8Array(n), this.where);
  }
}

function copyInto<T extends Float64Array | Uint32Array | Uint8Array>(to: T, from: T): T {
  to.set(from);
  return to;
}
