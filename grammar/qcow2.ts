/**
 * qcow2 images, as far as reading the VM state of an internal snapshot needs them (`savevm`
 * in the monitor, `virsh snapshot-create` with internal snapshots). Source: QEMU's
 * docs/interop/qcow2.txt (header, snapshot table, L1/L2 entries) and block/qcow2.h
 * (qcow2_vm_state_offset: the VM state lives in the image's address space right after the
 * disk, from the first L1 entry past the disk's size). docs/qcow2.md lists what is read.
 */
import type { Layout } from './layout.js';

/** "QFI\xfb" */
export const QCOW2_MAGIC = 0x514649fb;

/** The header fields of version 2, also the start of version 3's. */
export const Qcow2HeaderV2 = [
  { name: 'magic', type: 'be32', expect: QCOW2_MAGIC },
  { name: 'version', type: 'be32' },
  { name: 'backingFileOffset', type: 'be64n' },
  { name: 'backingFileSize', type: 'be32' },
  { name: 'clusterBits', type: 'be32', doc: 'log2 of the cluster size: 9 to 21' },
  { name: 'size', type: 'be64n', doc: 'virtual disk size in bytes' },
  { name: 'cryptMethod', type: 'be32' },
  { name: 'l1Size', type: 'be32' },
  { name: 'l1TableOffset', type: 'be64n' },
  { name: 'refcountTableOffset', type: 'be64n' },
  { name: 'refcountTableClusters', type: 'be32' },
  { name: 'nbSnapshots', type: 'be32' },
  { name: 'snapshotsOffset', type: 'be64n' },
] as const satisfies Layout;

/** What version 3 adds after the version 2 fields (byte 72). */
export const Qcow2HeaderV3 = [
  { name: 'incompatibleFeatures', type: 'be64' },
  { name: 'compatibleFeatures', type: 'be64' },
  { name: 'autoclearFeatures', type: 'be64' },
  { name: 'refcountOrder', type: 'be32' },
  { name: 'headerLength', type: 'be32' },
] as const satisfies Layout;

/** Byte 104 of a version 3 header longer than 104 bytes: 0 zlib (deflate), 1 zstd. */
export const QCOW2_COMPRESSION_TYPE_OFFSET = 104;
export const QCOW2_COMPRESSION_TYPES = ['zlib', 'zstd'] as const;

/** Incompatible feature bits (header.incompatibleFeatures). */
export const Qcow2Incompatible = {
  DIRTY: 1n << 0n,
  CORRUPT: 1n << 1n,
  EXTERNAL_DATA_FILE: 1n << 2n,
  COMPRESSION_TYPE: 1n << 3n,
  EXTENDED_L2: 1n << 4n,
} as const;

/** One entry of the snapshot table (at snapshotsOffset, each 8-byte aligned), before its extra data, id and name. */
export const Qcow2SnapshotEntry = [
  { name: 'l1TableOffset', type: 'be64n' },
  { name: 'l1Size', type: 'be32' },
  { name: 'idStrSize', type: 'be16' },
  { name: 'nameSize', type: 'be16' },
  { name: 'dateSec', type: 'be32' },
  { name: 'dateNsec', type: 'be32' },
  { name: 'vmClockNsec', type: 'be64' },
  { name: 'vmStateSize', type: 'be32', doc: 'the VM state size, or 0 when the extra data has the 64-bit one' },
  { name: 'extraDataSize', type: 'be32' },
] as const satisfies Layout;

/** Extra data of a snapshot entry, each field present when extraDataSize reaches past it. */
export const QCOW2_EXTRA_VM_STATE_SIZE_LARGE = 0;
export const QCOW2_EXTRA_DISK_SIZE = 8;

/** L1 entry: bits 9-55 hold the L2 table's offset. L2 entry (standard cluster): bits 9-55 the data cluster's offset. */
export const QCOW2_OFFSET_MASK = 0x00fffffffffffe00n;
/** L2 entry: the cluster is compressed (its descriptor is then laid out differently). */
export const QCOW2_OFLAG_COMPRESSED = 1n << 62n;
/** L2 entry (version 3): the cluster reads as zeros. */
export const QCOW2_OFLAG_ZERO = 1n;
/** Bytes of an L2 entry: standard, or with incompatible feature EXTENDED_L2 (the descriptor, then the subcluster bitmap). */
export const QCOW2_L2_ENTRY_STANDARD = 8;
export const QCOW2_L2_ENTRY_EXTENDED = 16;
/** Subclusters of a cluster with extended L2 entries: bitmap bits 0-31 allocated, 32-63 reads as zeros. */
export const QCOW2_SUBCLUSTERS = 32;
/** QEMU refuses an image with more snapshots (QCOW_MAX_SNAPSHOTS). */
export const QCOW2_MAX_SNAPSHOTS = 65536;
