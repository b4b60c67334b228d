/**
 * The RAM section ("ram", RAM_SAVE_FLAG_*): its records read and written. Reading keeps the
 * state QEMU's ram_load keeps (the last block for RAM_SAVE_FLAG_CONTINUE, the blocks MEM_SIZE
 * announced); writing keeps the mapped-ram layout of each block.
 */
import {
  MappedRamHeader,
  RamBlockEntry,
  RamBlockMrAddr,
  RamBlockPageSize,
  RamCompressHeader,
  RamXbzrleHeader,
  RamFlag,
  ramOpByFlag,
  type RamOp,
} from '../../grammar/ram.js';
import type { SectionKind } from '../../grammar/savevm.js';
import { byteAt, isZero } from '../io/bytes.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { readLayout } from '../layout/read.js';
import { writeLayout } from '../layout/write.js';
import { hex } from '../model/errors.js';
import type {
  MainRecord,
  MappedRamBitmapRecord,
  MappedRamHeaderValue,
  MappedRamPageRecord,
  RamBlockRecord,
  RamRecord,
} from '../model/records.js';
import { withDepth } from '../model/records.js';

/** What the RAM reader takes from the stream decoder around it (read when needed: they change as the stream goes). */
export interface RamDecodeContext {
  readonly r: StreamReader;
  /** TARGET_PAGE_SIZE now (the configuration's target-page-bits can set it) */
  pageSize(): number;
  readonly capabilities: ReadonlySet<string>;
  /** MIG_CMD_POSTCOPY_ADVISE seen so far: huge-page blocks carry their page size */
  postcopyAdvised(): boolean;
  readonly copy: boolean;
  readonly skipAbsentMappedRamPages: boolean;
  data(n: number, what: string): Uint8Array;
  rawChunks(n: number, reason: string, depth: number): Generator<MainRecord>;
}

/** ramOpByFlag as an array indexed by the flags (CONTINUE left out): read a page at a time, no Map lookup. */
const OP_BY_FLAG: readonly (RamOp | undefined)[] = (() => {
  const table: (RamOp | undefined)[] = new Array<RamOp | undefined>(Math.max(...ramOpByFlag.keys()) + 1).fill(
    undefined,
  );
  for (const [flag, op] of ramOpByFlag) table[flag] = op;
  return table;
})();

/**
 * A RAM section's payload read a record at a time, up to RAM_SAVE_FLAG_EOS (undefined after
 * it). Not a generator: the stream decoder pulls each page straight from here, and a generator
 * a page cost about as much as reading the page.
 */
export class RamPayload {
  /** MEM_SIZE's RAMBlock list, while it is being read */
  private blocks: Generator<MainRecord> | undefined;
  private ended = false;

  constructor(
    private readonly dec: RamSectionDecoder,
    private readonly kind: SectionKind,
    private readonly depth: number,
    private readonly pageSize: number,
  ) {}

  next(): MainRecord | undefined {
    if (this.blocks) {
      const x = this.blocks.next();
      if (!x.done) return x.value;
      this.blocks = undefined;
    }
    if (this.ended) return undefined;
    const rec = this.dec.readRecord(this.kind, this.depth, this.pageSize);
    if (rec.op === 'eos') this.ended = true;
    else if (rec.op === 'mem_size') this.blocks = this.dec.memSizeBlocks(rec.addr, this.depth);
    return rec;
  }
}

/** The RAM reader's memory between records: the MEM_SIZE blocks and the block RAM_SAVE_FLAG_CONTINUE refers to. */
export interface RamReadState {
  readonly ramBlocks: ReadonlyMap<string, { readonly usedLength: number }>;
  readonly lastRamBlock: string | undefined;
}

export class RamSectionDecoder {
  /** blocks announced by MEM_SIZE */
  readonly ramBlocks = new Map<string, { usedLength: number }>();
  private lastRamBlock: string | undefined;
  /** where the RAM record being read starts and what it is, for error paths */
  recordAt = 0;
  recordOp = 'RAM';

  constructor(private readonly ctx: RamDecodeContext) {}

  /** What the reader keeps from record to record, copied (a decoder checkpoint holds it). */
  state(): RamReadState {
    return { ramBlocks: new Map(this.ramBlocks), lastRamBlock: this.lastRamBlock };
  }

  /** Take up a state `state()` gave (to start reading again at the record after it). */
  restore(s: RamReadState): void {
    this.ramBlocks.clear();
    for (const [k, v] of s.ramBlocks) this.ramBlocks.set(k, v);
    this.lastRamBlock = s.lastRamBlock;
  }

  /** RAM records until RAM_SAVE_FLAG_EOS, pulled one at a time. */
  payload(kind: SectionKind, depth: number): RamPayload {
    return new RamPayload(this, kind, depth, this.ctx.pageSize());
  }

  /** One record of a RAM section's payload (RamPayload.next asks; MEM_SIZE's block list is its to read). */
  readRecord(kind: SectionKind, depth: number, pageSize: number): RamRecord {
    const r = this.ctx.r;
    const flagMask = pageSize - 1;
    const copy = this.ctx.copy;
    const offset = r.offset;
    this.recordAt = offset;
    this.recordOp = 'RAM';
    // two be32 reads rather than be64Words' pair: no array per page
    if (r.available < 8) r.ensure(8, 'RAM record header');
    const hi = r.be32();
    const lo = r.be32();
    const flags = lo & flagMask;
    const addr = hi * 0x1_0000_0000 + ((lo & ~flagMask) >>> 0);
    const key = flags & ~RamFlag.RAM_SAVE_FLAG_CONTINUE;
    const op = key < OP_BY_FLAG.length ? OP_BY_FLAG[key] : undefined;
    if (op) this.recordOp = op;
    if (op === 'page' || op === 'zero' || op === 'xbzrle' || op === 'compress_page') {
      let block: string;
      if (flags & RamFlag.RAM_SAVE_FLAG_CONTINUE) {
        if (this.lastRamBlock === undefined) {
          throw r.error(
            'bad-ram-record',
            'a RAMBlock name (RAM_SAVE_FLAG_CONTINUE with no previous block)',
            `flags ${hex(flags)}`,
            offset,
          );
        }
        block = this.lastRamBlock;
      } else {
        block = r.counted('RAMBlock name');
        if (!this.ramBlocks.has(block)) {
          throw r.error('bad-ram-record', 'a RAMBlock announced by MEM_SIZE', JSON.stringify(block), offset + 8);
        }
        this.lastRamBlock = block;
      }
      if (op === 'page') {
        const data = copy ? r.copyBytes(pageSize, 'page') : r.bytes(pageSize, 'page');
        return withDepth({ kind: 'ram', op, offset, length: r.offset - offset, flags, addr, block, data }, depth);
      } else if (op === 'zero') {
        const fill = r.u8('zero page fill byte');
        return withDepth({ kind: 'ram', op, offset, length: r.offset - offset, flags, addr, block, fill }, depth);
      } else if (op === 'xbzrle') {
        const h = readLayout(r, RamXbzrleHeader, 'XBZRLE');
        const encoding = h.encoding;
        const n = h.encodedLength;
        if (n > pageSize)
          throw r.error('bad-ram-record', `an XBZRLE length of at most ${pageSize}`, `${n}`, r.offset - 2);
        const data = this.ctx.data(n, 'XBZRLE data');
        return withDepth(
          { kind: 'ram', op, offset, length: r.offset - offset, flags, addr, block, encoding, data },
          depth,
        );
      } else {
        const n = readLayout(r, RamCompressHeader, 'COMPRESS_PAGE').compressedLength;
        // compressBound(page) is a little over the page size; QEMU rejects anything larger.
        const bound = pageSize + (pageSize >>> 12) + (pageSize >>> 14) + (pageSize >>> 25) + 13;
        if (n > bound)
          throw r.error('bad-ram-record', `a compressed page length of at most ${bound}`, `${n}`, r.offset - 4);
        const data = this.ctx.data(n, 'compressed page');
        return withDepth({ kind: 'ram', op, offset, length: r.offset - offset, flags, addr, block, data }, depth);
      }
    }
    // EOS ends the payload and MEM_SIZE is followed by its block list: RamPayload sees to both
    if (op === 'eos' || op === 'multifd_flush' || op === 'mem_size')
      return withDepth({ kind: 'ram', op, offset, length: 8, flags, addr }, depth);
    if (op === 'hook') {
      throw r.error(
        'bad-ram-record',
        'RAM records of a non-RDMA stream',
        'RAM_SAVE_FLAG_HOOK (RDMA control, not supported)',
        offset,
      );
    }
    throw r.error(
      'bad-ram-record',
      'RAM record flags (ZERO, MEM_SIZE, PAGE, EOS, XBZRLE, COMPRESS_PAGE, MULTIFD_FLUSH)',
      `flags ${hex(flags)} in ${kind}`,
      offset,
    );
  }

  /** MEM_SIZE's RAMBlock list (RamPayload reads it after the MEM_SIZE record). */
  *memSizeBlocks(total: number, depth: number): Generator<MainRecord> {
    const r = this.ctx.r;
    const ignoreShared = this.ctx.capabilities.has('x-ignore-shared');
    const mappedRam = this.ctx.capabilities.has('mapped-ram');
    let sum = 0;
    while (sum < total) {
      const offset = r.offset;
      r.path.push(`RAMBlock entry @${hex(offset)}`);
      const e = readLayout(r, RamBlockEntry, 'RAMBlock');
      const idstr = e.idstr;
      const usedLength = e.usedLength;
      const rec: RamBlockRecord = { kind: 'ram_block', offset, length: 0, idstr, usedLength };
      if (this.ctx.postcopyAdvised() && this.looksLikeHugePageSize())
        rec.pageSize = readLayout(r, RamBlockPageSize, 'RAMBlock').pageSize;
      if (ignoreShared) rec.mrAddr = readLayout(r, RamBlockMrAddr, 'RAMBlock').mrAddr;
      if (mappedRam) rec.mappedRam = readLayout(r, MappedRamHeader, 'MappedRamHeader');
      rec.length = r.offset - offset;
      sum += usedLength;
      if (sum > total) {
        throw r.error(
          'bad-ram-record',
          `RAMBlock lengths adding up to the MEM_SIZE total ${hex(total)}`,
          `${hex(sum)} after ${JSON.stringify(idstr)}`,
          offset,
        );
      }
      this.ramBlocks.set(idstr, { usedLength });
      yield withDepth(rec, depth);
      if (rec.mappedRam && rec.mappedRam.pagesOffset !== 0) yield* this.mappedRamArea(rec, rec.mappedRam, depth);
      r.path.pop();
    }
  }

  /**
   * postcopy-ram streams carry a be64 page size after used_length for huge-page blocks
   * only; the destination knows which from its own RAM. From the stream alone: a block
   * name never starts with a 0 length byte, so 8 bytes that read as a power of two page
   * size are that field.
   */
  private looksLikeHugePageSize(): boolean {
    const r = this.ctx.r;
    if (!r.fill(8)) return false;
    if (r.peekAt(0) !== 0 || r.peekAt(1) !== 0 || r.peekAt(2) !== 0 || r.peekAt(3) !== 0) return false;
    const v = ((r.peekAt(4) << 24) | (r.peekAt(5) << 16) | (r.peekAt(6) << 8) | r.peekAt(7)) >>> 0;
    return v > this.ctx.pageSize() && (v & (v - 1)) === 0;
  }

  /** mapped-ram: bitmap, alignment padding, page slots; then the stream continues after the area. */
  private *mappedRamArea(
    block: RamBlockRecord,
    h: NonNullable<RamBlockRecord['mappedRam']>,
    depth: number,
  ): Generator<MainRecord> {
    const r = this.ctx.r;
    const pageSize = h.pageSize;
    if (pageSize !== this.ctx.pageSize() || pageSize <= 0) {
      throw r.error('bad-ram-record', `MappedRamHeader page_size ${this.ctx.pageSize()}`, `${pageSize}`, block.offset);
    }
    if (h.bitmapOffset !== r.offset) {
      throw r.error(
        'bad-ram-record',
        `MappedRamHeader bitmap_offset ${hex(r.offset)} (right after the header)`,
        hex(h.bitmapOffset),
      );
    }
    const numPages = Math.ceil(block.usedLength / pageSize);
    const bitmapSize = Math.ceil(numPages / 64) * 8;
    if (h.pagesOffset < h.bitmapOffset + bitmapSize || h.pagesOffset % pageSize !== 0) {
      throw r.error(
        'bad-ram-record',
        `a page-aligned MappedRamHeader pages_offset after the ${bitmapSize}-byte bitmap`,
        hex(h.pagesOffset),
      );
    }
    const bmAt = r.offset;
    const bitmap = r.copyBytes(bitmapSize, 'mapped-ram bitmap');
    yield withDepth(
      { kind: 'mapped_ram_bitmap', offset: bmAt, length: bitmapSize, block: block.idstr, data: bitmap },
      depth,
    );
    const padAt = r.offset;
    const padLen = h.pagesOffset - padAt;
    if (padLen > 0 && !this.zeroRun(padLen)) {
      yield* this.ctx.rawChunks(padLen, 'mapped-ram padding (not zero)', depth);
    } else {
      r.skip(padLen, 'mapped-ram padding');
    }
    const skipAbsent = this.ctx.skipAbsentMappedRamPages;
    for (let i = 0; i < numPages; i++) {
      const at = r.offset;
      const present = ((byteAt(bitmap, i >>> 3) >>> (i & 7)) & 1) === 1;
      const size = Math.min(pageSize, block.usedLength - i * pageSize);
      if (!present && skipAbsent) {
        r.skip(size, 'mapped-ram page'); // holes of a sparse file: seek over them
        continue;
      }
      const data = this.ctx.data(size, 'mapped-ram page');
      if (present || !isZero(data)) {
        yield withDepth(
          { kind: 'mapped_ram_page', offset: at, length: size, block: block.idstr, index: i, present, data },
          depth,
        );
      }
    }
  }

  /** true if the next n bytes (n within the buffer) are all zero; consumes nothing */
  private zeroRun(n: number): boolean {
    if (n > this.ctx.r.capacity || !this.ctx.r.fill(n)) return false;
    return isZero(this.ctx.r.window().subarray(0, n));
  }
}

/** The mirror of RamSectionDecoder: RAM records, MEM_SIZE entries and mapped-ram areas. */
export class RamSectionEncoder {
  private mapped = new Map<string, { header: MappedRamHeaderValue; usedLength: number }>();
  /** end offset of the mapped-ram page area being written, if any */
  private openAreaEnd: number | undefined;

  constructor(private readonly w: StreamWriter) {}

  write(rec: RamRecord | RamBlockRecord | MappedRamBitmapRecord | MappedRamPageRecord): void {
    const w = this.w;
    switch (rec.kind) {
      case 'ram':
        this.ram(rec);
        break;
      case 'ram_block':
        writeLayout(w, RamBlockEntry, { idstr: rec.idstr, usedLength: rec.usedLength });
        if (rec.pageSize !== undefined) writeLayout(w, RamBlockPageSize, { pageSize: rec.pageSize });
        if (rec.mrAddr !== undefined) writeLayout(w, RamBlockMrAddr, { mrAddr: rec.mrAddr });
        if (rec.mappedRam) {
          const h = rec.mappedRam;
          writeLayout(w, MappedRamHeader, { ...h });
          if (h.pagesOffset !== 0) {
            this.mapped.set(rec.idstr, { header: h, usedLength: rec.usedLength });
            this.openAreaEnd = h.pagesOffset + rec.usedLength;
          }
        }
        break;
      case 'mapped_ram_bitmap': {
        const m = this.mappedBlock(rec.block);
        w.fillTo(m.header.bitmapOffset);
        w.bytes(rec.data);
        // The page area starts at pages_offset; an explicit raw record covers odd padding.
        break;
      }
      case 'mapped_ram_page': {
        const m = this.mappedBlock(rec.block);
        w.fillTo(m.header.pagesOffset + rec.index * m.header.pageSize);
        w.bytes(rec.data);
        break;
      }
    }
  }

  /** The stream continues right after a page area: absent pages at its end are holes. */
  closeArea(): void {
    if (this.openAreaEnd !== undefined) this.w.fillTo(this.openAreaEnd);
    this.openAreaEnd = undefined;
  }

  private mappedBlock(name: string): { header: MappedRamHeaderValue; usedLength: number } {
    const m = this.mapped.get(name);
    if (!m) throw new Error(`mapped-ram record for block ${name} before its MEM_SIZE entry`);
    return m;
  }

  private ram(rec: RamRecord): void {
    const w = this.w;
    w.be64Number(rec.addr + rec.flags);
    switch (rec.op) {
      case 'mem_size':
      case 'eos':
      case 'multifd_flush':
        return;
      default:
        if (!(rec.flags & RamFlag.RAM_SAVE_FLAG_CONTINUE)) w.counted(rec.block);
    }
    switch (rec.op) {
      case 'zero':
        w.u8(rec.fill);
        break;
      case 'page':
        w.bytes(rec.data);
        break;
      case 'xbzrle':
        writeLayout(w, RamXbzrleHeader, { encoding: rec.encoding, encodedLength: rec.data.length });
        w.bytes(rec.data);
        break;
      case 'compress_page':
        writeLayout(w, RamCompressHeader, { compressedLength: rec.data.length });
        w.bytes(rec.data);
        break;
    }
  }
}
