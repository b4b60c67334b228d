/**
 * The "ram" section (migration/ram.c, ram.h). Spec: savevm-main-channel.md §6.
 * Every record starts with be64 (offset | flags); flags live below TARGET_PAGE_SIZE.
 */
import type { Layout } from './layout.js';

export const RAM_SECTION_IDSTR = 'ram';
export const RAM_SECTION_VERSION = 4;

export const RamFlag = {
  RAM_SAVE_FLAG_FULL: 0x001,
  RAM_SAVE_FLAG_ZERO: 0x002,
  RAM_SAVE_FLAG_MEM_SIZE: 0x004,
  RAM_SAVE_FLAG_PAGE: 0x008,
  RAM_SAVE_FLAG_EOS: 0x010,
  RAM_SAVE_FLAG_CONTINUE: 0x020,
  RAM_SAVE_FLAG_XBZRLE: 0x040,
  RAM_SAVE_FLAG_HOOK: 0x080,
  RAM_SAVE_FLAG_COMPRESS_PAGE: 0x100,
  RAM_SAVE_FLAG_MULTIFD_FLUSH: 0x200,
} as const;
export type RamFlagName = keyof typeof RamFlag;

/** The record kinds a RAM record header can announce (flags without CONTINUE). */
export type RamOp = 'mem_size' | 'zero' | 'page' | 'eos' | 'xbzrle' | 'compress_page' | 'multifd_flush' | 'hook';

export const ramOpByFlag: ReadonlyMap<number, RamOp> = new Map<number, RamOp>([
  [RamFlag.RAM_SAVE_FLAG_MEM_SIZE, 'mem_size'],
  [RamFlag.RAM_SAVE_FLAG_ZERO, 'zero'],
  [RamFlag.RAM_SAVE_FLAG_PAGE, 'page'],
  [RamFlag.RAM_SAVE_FLAG_EOS, 'eos'],
  [RamFlag.RAM_SAVE_FLAG_XBZRLE, 'xbzrle'],
  [RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE, 'compress_page'],
  [RamFlag.RAM_SAVE_FLAG_MULTIFD_FLUSH, 'multifd_flush'],
  [RamFlag.RAM_SAVE_FLAG_HOOK, 'hook'],
]);

/** Records that name a RAMBlock (unless CONTINUE says "same block as before"). */
export const RAM_OPS_WITH_BLOCK: ReadonlySet<RamOp> = new Set<RamOp>(['zero', 'page', 'xbzrle', 'compress_page']);

/**
 * What follows the header (and block name) of each page-carrying record. The page-sized
 * data itself is not a layout field: decoders hand it on as a view of the read buffer.
 * ZERO: the fill byte; PAGE: TARGET_PAGE_SIZE bytes; XBZRLE and COMPRESS_PAGE: a length, then data.
 */
export const RamZeroPayload = [
  { name: 'fill', type: 'u8', doc: 'fill byte; 0 from every current writer (loaders check it from 8.2)' },
] as const satisfies Layout;
export const ENCODING_FLAG_XBZRLE = 0x01;
export const RamXbzrleHeader = [
  { name: 'encoding', type: 'u8', doc: 'ENCODING_FLAG_XBZRLE' },
  { name: 'encodedLength', type: 'be16', doc: 'at most TARGET_PAGE_SIZE' },
] as const satisfies Layout;
export const RamCompressHeader = [
  { name: 'compressedLength', type: 'be32', doc: 'at most compressBound(TARGET_PAGE_SIZE)' },
] as const satisfies Layout;

/** One RAMBlock entry of MEM_SIZE; optional parts (page size, mr_addr, MappedRamHeader) depend on capabilities. */
export const RamBlockEntry = [
  { name: 'idstr', type: 'counted' },
  { name: 'usedLength', type: 'be64n' },
] as const satisfies Layout;
export const RamBlockPageSize = [
  { name: 'pageSize', type: 'be64n', doc: 'postcopy-ram, huge-page blocks only' },
] as const satisfies Layout;
export const RamBlockMrAddr = [{ name: 'mrAddr', type: 'be64n', doc: 'x-ignore-shared' }] as const satisfies Layout;

/** MappedRamHeader (9.0+), packed, big-endian, 28 bytes. */
export const MAPPED_RAM_HDR_VERSION = 1;
export const MAPPED_RAM_FILE_OFFSET_ALIGNMENT = 0x100000;
export const MappedRamHeader = [
  { name: 'version', type: 'be32' },
  { name: 'pageSize', type: 'be64n' },
  { name: 'bitmapOffset', type: 'be64n' },
  { name: 'pagesOffset', type: 'be64n' },
] as const satisfies Layout;

/** Default TARGET_PAGE_SIZE (x86); the configuration's target-page-bits overrides it. */
export const DEFAULT_TARGET_PAGE_SIZE = 4096;
