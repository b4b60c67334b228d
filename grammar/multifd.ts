/**
 * Multifd channels (migration/multifd.h): each its own byte stream, opened by a
 * MultiFDInit, then packets. Spec: vfio-and-multifd.md §8 with its verification file.
 */
import { fieldOffset, fixedSize, type Layout } from './layout.js';

export const MULTIFD_MAGIC = 0x11223344;
export const MULTIFD_VERSION = 1;

export const MultifdFlag = {
  MULTIFD_FLAG_SYNC: 0x01,
  MULTIFD_FLAG_NOCOMP: 0x00,
  MULTIFD_FLAG_ZLIB: 0x02,
  MULTIFD_FLAG_ZSTD: 0x04,
  MULTIFD_FLAG_QPL: 0x08,
  MULTIFD_FLAG_UADK: 0x10,
  MULTIFD_FLAG_QATZIP: 0x20,
  MULTIFD_FLAG_DEVICE_STATE: 0x40,
} as const;
/** multifd-compression parameter values and the flag each puts in packets */
export const MULTIFD_COMPRESSION_FLAG: Readonly<Record<string, number>> = {
  none: MultifdFlag.MULTIFD_FLAG_NOCOMP,
  zlib: MultifdFlag.MULTIFD_FLAG_ZLIB,
  zstd: MultifdFlag.MULTIFD_FLAG_ZSTD,
  qpl: MultifdFlag.MULTIFD_FLAG_QPL,
  uadk: MultifdFlag.MULTIFD_FLAG_UADK,
  qatzip: MultifdFlag.MULTIFD_FLAG_QATZIP,
};
/** migration parameter multifd-channels when it is not set (migration/options.c DEFAULT_MIGRATE_MULTIFD_CHANNELS) */
export const DEFAULT_MULTIFD_CHANNELS = 2;
/** the compression method is a value in these bits (9.2+ width; older ones are a subset) */
export const MULTIFD_FLAG_COMPRESSION_MASK = 0x3e;

/** MultiFDInit_t: 64 bytes, once per channel. */
export const MultifdInit = [
  { name: 'magic', type: 'be32', expect: MULTIFD_MAGIC },
  { name: 'version', type: 'be32' },
  { name: 'uuid', type: 'bytes', length: 16 },
  { name: 'id', type: 'u8' },
  { name: 'unused', type: 'bytes', length: 7 + 32, doc: 'unused1[7] + unused2[4] (u64), zero' },
] as const satisfies Layout;

/** MultiFDPacketHdr_t: the first 12 bytes of every packet. */
export const MultifdPacketHeader = [
  { name: 'magic', type: 'be32', expect: MULTIFD_MAGIC },
  { name: 'version', type: 'be32' },
  { name: 'flags', type: 'be32' },
] as const satisfies Layout;

/** MultiFDPacket_t after the header: 308 bytes, then the offset array. */
export const MultifdRamPacketBody = [
  { name: 'pagesAlloc', type: 'be32' },
  { name: 'normalPages', type: 'be32', doc: 'pages_used before 7.0' },
  { name: 'nextPacketSize', type: 'be32' },
  { name: 'packetNum', type: 'be64' },
  { name: 'zeroPages', type: 'be32', doc: '9.0+; part of unused[4] before' },
  { name: 'unused', type: 'bytes', length: 28 },
  { name: 'ramblock', type: 'bytes', length: 256, doc: 'NUL-padded name; old senders leave stale bytes' },
] as const satisfies Layout;
/** header + body: 320 bytes before the offset array */
export const MULTIFD_RAM_PACKET_FIXED = (fixedSize(MultifdPacketHeader) ?? 0) + (fixedSize(MultifdRamPacketBody) ?? 0);
/** the offset array holds 512 KiB worth of pages, whatever the page size */
export const MULTIFD_PACKET_BYTES_OF_PAGES = 512 * 1024;

/** MultiFDPacketDeviceState_t after the header (10.0+). */
export const MultifdDeviceStateBody = [
  { name: 'idstr', type: 'bytes', length: 256 },
  { name: 'instanceId', type: 'be32' },
  { name: 'nextPacketSize', type: 'be32' },
] as const satisfies Layout;

const HEADER_SIZE = fixedSize(MultifdPacketHeader) ?? 0;
const DEVICE_STATE_FIXED = HEADER_SIZE + (fixedSize(MultifdDeviceStateBody) ?? 0);
type Names<L extends Layout> = L[number]['name'];

/** Where each field of a packet sits from the packet's first byte: what diagnostics point at. */
export const MultifdOffset = {
  init: (name: Names<typeof MultifdInit>): number => fieldOffset(MultifdInit, name),
  header: (name: Names<typeof MultifdPacketHeader>): number => fieldOffset(MultifdPacketHeader, name),
  ram: (name: Names<typeof MultifdRamPacketBody>): number => HEADER_SIZE + fieldOffset(MultifdRamPacketBody, name),
  deviceState: (name: Names<typeof MultifdDeviceStateBody>): number =>
    HEADER_SIZE + fieldOffset(MultifdDeviceStateBody, name),
  /** the first byte after a device-state packet's fixed part: its payload */
  deviceStatePayload: DEVICE_STATE_FIXED,
} as const;
