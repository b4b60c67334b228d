/**
 * The VM state of a qcow2 image's internal snapshots, read in place: the snapshot table, and
 * each snapshot's L1 and L2 tables mapping the VM state (past the disk's end in the image's
 * address space) to clusters of the file. Nothing is copied out; a snapshot's VM state is a
 * seekable ByteSource the stream decoder reads like any file. Every table entry is checked
 * against the file before it is followed, and a bad one is a StreamError naming it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { zlib } from '../io/zlib.js';
import {
  QCOW2_COMPRESSION_TYPE_OFFSET,
  QCOW2_COMPRESSION_TYPES,
  QCOW2_EXTRA_DISK_SIZE,
  QCOW2_EXTRA_VM_STATE_SIZE_LARGE,
  QCOW2_MAGIC,
  QCOW2_MAX_SNAPSHOTS,
  QCOW2_OFFSET_MASK,
  QCOW2_L2_ENTRY_EXTENDED,
  QCOW2_L2_ENTRY_STANDARD,
  QCOW2_OFLAG_COMPRESSED,
  QCOW2_OFLAG_ZERO,
  QCOW2_SUBCLUSTERS,
  Qcow2HeaderV2,
  Qcow2HeaderV3,
  Qcow2Incompatible,
  Qcow2SnapshotEntry,
} from '../../grammar/qcow2.js';
import { compileLayout } from '../layout/parser.js';
import { hex, StreamError } from '../model/errors.js';
import type { ByteSource } from '../io/source.js';
import { be32At } from '../io/bytes.js';
import { zstdDecoder } from '../io/zstd.js';

/** One internal snapshot, as `qemu-img snapshot -l` lists it. */
export interface Qcow2Snapshot {
  id: string;
  name: string;
  /** bytes of VM state (0: a disk-only snapshot) */
  vmStateSize: number;
  /** the disk size when it was taken: where its VM state starts depends on it */
  diskSize: number;
  date: Date;
  /** guest clock at the snapshot, in nanoseconds */
  vmClockNsec: bigint;
  l1TableOffset: number;
  l1Size: number;
}

const HEADER_V2 = compileLayout(Qcow2HeaderV2);
const HEADER_V3 = compileLayout(Qcow2HeaderV3);
const SNAPSHOT = compileLayout(Qcow2SnapshotEntry);

export class Qcow2Image {
  readonly version: number;
  readonly clusterBits: number;
  readonly diskSize: number;
  readonly snapshots: Qcow2Snapshot[] = [];
  readonly compression: (typeof QCOW2_COMPRESSION_TYPES)[number] = 'zlib';
  /** incompatible feature EXTENDED_L2: 16-byte L2 entries, each cluster in 32 subclusters */
  readonly extendedL2: boolean = false;
  private readonly fd: number;
  readonly fileSize: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.fileSize = fstatSync(this.fd).size;
      const h = HEADER_V2.parse(this.bytes(0, HEADER_V2.size, 'the qcow2 header', ['qcow2 header']));
      if (h.magic !== QCOW2_MAGIC)
        throw this.error(0, ['qcow2 header'], 'QCOW2_MAGIC (QFI\\xfb)', hex(h.magic), 'bad-magic');
      if (h.version !== 2 && h.version !== 3)
        throw this.error(4, ['qcow2 header'], 'version 2 or 3', String(h.version), 'bad-version');
      if (h.clusterBits < 9 || h.clusterBits > 21)
        throw this.error(20, ['qcow2 header'], 'cluster_bits from 9 to 21', String(h.clusterBits), 'bad-value');
      this.version = h.version;
      this.clusterBits = h.clusterBits;
      this.diskSize = h.size;
      if (h.version === 3) {
        const v3 = HEADER_V3.parse(
          this.bytes(HEADER_V2.size, HEADER_V3.size, 'the qcow2 version 3 header', ['qcow2 header']),
        );
        this.extendedL2 = (v3.incompatibleFeatures & Qcow2Incompatible.EXTENDED_L2) !== 0n;
        if (v3.incompatibleFeatures & Qcow2Incompatible.EXTERNAL_DATA_FILE)
          throw this.error(72, ['qcow2 header'], 'data in the image', 'an external data file', 'bad-value');
        if (v3.headerLength > QCOW2_COMPRESSION_TYPE_OFFSET) {
          const type = this.bytes(QCOW2_COMPRESSION_TYPE_OFFSET, 1, 'the compression type', ['qcow2 header'])[0] ?? 0;
          const name = QCOW2_COMPRESSION_TYPES[type];
          if (!name)
            throw this.error(
              QCOW2_COMPRESSION_TYPE_OFFSET,
              ['qcow2 header'],
              'compression type 0 (zlib) or 1 (zstd)',
              String(type),
              'bad-value',
            );
          this.compression = name;
        }
      }
      if (h.nbSnapshots > QCOW2_MAX_SNAPSHOTS)
        throw this.error(
          60,
          ['qcow2 header'],
          `at most ${QCOW2_MAX_SNAPSHOTS} snapshots`,
          String(h.nbSnapshots),
          'limit',
        );
      let at = h.snapshotsOffset;
      for (let i = 0; i < h.nbSnapshots; i++) {
        const path = ['qcow2 snapshot table', `entry ${i} @${hex(at)}`];
        const e = SNAPSHOT.parse(this.bytes(at, SNAPSHOT.size, 'a snapshot table entry', path));
        const extra = this.bytes(at + SNAPSHOT.size, e.extraDataSize, 'its extra data', path);
        const texts = this.bytes(
          at + SNAPSHOT.size + e.extraDataSize,
          e.idStrSize + e.nameSize,
          'its id and name',
          path,
        );
        const extraBig = (off: number): number | undefined =>
          extra.length >= off + 8
            ? Number(Buffer.from(extra.buffer, extra.byteOffset, extra.length).readBigUInt64BE(off))
            : undefined;
        this.snapshots.push({
          id: Buffer.from(texts.subarray(0, e.idStrSize)).toString('utf8'),
          name: Buffer.from(texts.subarray(e.idStrSize)).toString('utf8'),
          vmStateSize: extraBig(QCOW2_EXTRA_VM_STATE_SIZE_LARGE) || e.vmStateSize,
          diskSize: extraBig(QCOW2_EXTRA_DISK_SIZE) ?? h.size,
          date: new Date(e.dateSec * 1000 + Math.floor(e.dateNsec / 1e6)),
          vmClockNsec: e.vmClockNsec,
          l1TableOffset: e.l1TableOffset,
          l1Size: e.l1Size,
        });
        const taken = this.snapshots[this.snapshots.length - 1];
        // a VM state is written densely (zero pages are records of a few bytes): one larger than
        // the whole image is a lying size, and reading it would be an endless run of unallocated zeros
        if (taken && taken.vmStateSize > this.fileSize)
          throw this.error(
            at + 32,
            path,
            `a VM state size the image can hold (at most its ${this.fileSize} bytes)`,
            String(taken.vmStateSize),
            'limit',
          );
        at = align8(at + SNAPSHOT.size + e.extraDataSize + e.idStrSize + e.nameSize);
      }
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  /** The snapshot `which` names by id or name; by default the only one, or the newest. */
  snapshot(which?: string): Qcow2Snapshot | undefined {
    if (which !== undefined)
      return this.snapshots.find((s) => s.id === which) ?? this.snapshots.find((s) => s.name === which);
    return [...this.snapshots].filter((s) => s.vmStateSize > 0).sort((a, b) => b.date.getTime() - a.date.getTime())[0];
  }

  /** The snapshot's VM state as a seekable source of exactly its size. */
  vmState(snapshot: Qcow2Snapshot): Qcow2VmState {
    return new Qcow2VmState(this, snapshot);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** `length` bytes at `offset` of the file; a short read is a StreamError saying what was there to be read. */
  bytes(offset: number, length: number, what: string, path: readonly string[]): Uint8Array {
    if (offset + length > this.fileSize)
      throw this.error(
        offset,
        path,
        `${what}: ${length} bytes at ${hex(offset)}`,
        `the image ends at ${hex(this.fileSize)}`,
        'truncated',
      );
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, out, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return out;
  }

  /** Read straight into a caller's buffer (data clusters). */
  readInto(into: Uint8Array, intoOffset: number, length: number, offset: number): number {
    return readSync(this.fd, into, intoOffset, length, offset);
  }

  error(
    offset: number,
    path: readonly string[],
    expected: string,
    found: string,
    code: StreamError['code'],
  ): StreamError {
    return new StreamError(code, offset, [this.path, ...path], expected, found);
  }
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** A run of VM state bytes: reading as zeros, inside a compressed cluster, or kept in the file as they are. */
type Extent =
  | { kind: 'zeros'; n: number }
  | { kind: 'compressed'; n: number; entry: bigint; entryAt: number; where: string[]; inCluster: number }
  | { kind: 'file'; n: number; fileOffset: number };

/**
 * A snapshot's VM state: byte `at` of it is byte vmStateOffset + at of the image's address
 * space, which the snapshot's L1 table (one entry per L2 table) and L2 tables (one entry per
 * cluster) map to the file. The last L2 table read is kept: the VM state is read in order.
 */
export class Qcow2VmState implements ByteSource {
  readonly seekable = true;
  readonly size: number;
  readonly name: string;
  private readonly clusterSize: number;
  private readonly l2EntrySize: number;
  private readonly l2Entries: number;
  private readonly vmStateOffset: number;
  private readonly l1: DataView;
  private l2: { offset: number; table: DataView } | undefined;
  /** the last compressed cluster inflated, by its descriptor */
  private inflated: { entry: bigint; data: Uint8Array } | undefined;

  constructor(
    private readonly image: Qcow2Image,
    private readonly snapshot: Qcow2Snapshot,
  ) {
    this.name = `${image.path} (snapshot ${snapshot.id} "${snapshot.name}")`;
    this.size = snapshot.vmStateSize;
    this.clusterSize = 2 ** image.clusterBits;
    this.l2EntrySize = image.extendedL2 ? QCOW2_L2_ENTRY_EXTENDED : QCOW2_L2_ENTRY_STANDARD;
    this.l2Entries = this.clusterSize / this.l2EntrySize;
    // qcow2_vm_state_offset: l1_vm_state_index << (cluster_bits + l2_bits), the index being the disk size in L2 spans, rounded up
    const l2Span = this.clusterSize * this.l2Entries;
    this.vmStateOffset = Math.ceil(snapshot.diskSize / l2Span) * l2Span;
    const l1 = image.bytes(snapshot.l1TableOffset, snapshot.l1Size * 8, 'the L1 table', this.where());
    this.l1 = new DataView(l1.buffer, l1.byteOffset, l1.byteLength);
  }

  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    if (at >= this.size) return 0;
    const e = this.extent(at, length);
    if (e.kind === 'zeros') {
      into.fill(0, intoOffset, intoOffset + e.n);
      return e.n;
    }
    if (e.kind === 'compressed') {
      const data = this.inflate(e.entry, e.entryAt, e.where);
      into.set(data.subarray(e.inCluster, e.inCluster + e.n), intoOffset);
      return e.n;
    }
    return this.image.readInto(into, intoOffset, e.n, e.fileOffset);
  }

  /**
   * Where byte `at` of the VM state is kept in the image file, when it is kept there as it is
   * (not in a compressed cluster, not reading as zeros): so that a tool can change it in place.
   */
  fileOffset(at: number): number | undefined {
    if (at < 0 || at >= this.size) return undefined;
    const e = this.extent(at, 1);
    return e.kind === 'file' ? e.fileOffset : undefined;
  }

  /** How the VM state's bytes from `at` (up to `length`, within one cluster or subcluster) are stored. */
  private extent(at: number, length: number): Extent {
    const guest = this.vmStateOffset + at;
    const inCluster = guest % this.clusterSize;
    let n = Math.min(length, this.clusterSize - inCluster, this.size - at);
    const cluster = Math.floor(guest / this.clusterSize);
    const l1Index = Math.floor(cluster / this.l2Entries);
    const path = [...this.where(), `VM state byte ${hex(at)}`];
    // past the L1 table, or no L2 table: never written, reads as zeros
    if (l1Index >= this.snapshot.l1Size) return { kind: 'zeros', n };
    const l2Offset = Number(this.l1.getBigUint64(l1Index * 8) & QCOW2_OFFSET_MASK);
    if (l2Offset === 0) return { kind: 'zeros', n };
    const l2 = this.l2Table(l2Offset, l1Index, path);
    const l2Index = cluster % this.l2Entries;
    const entryAt = l2Offset + l2Index * this.l2EntrySize;
    const entry = l2.getBigUint64(l2Index * this.l2EntrySize);
    const where = [...path, `L2 table @${hex(l2Offset)} entry ${l2Index}`];
    if (entry & QCOW2_OFLAG_COMPRESSED) return { kind: 'compressed', n, entry, entryAt, where, inCluster };
    let zero = this.image.version === 3 && !this.image.extendedL2 && (entry & QCOW2_OFLAG_ZERO) !== 0n;
    const dataOffset = Number(entry & QCOW2_OFFSET_MASK);
    if (this.image.extendedL2) {
      // one subcluster at a time: each has its own "allocated" (bit sc) and "reads as zeros" (bit 32 + sc)
      const sub = this.clusterSize / QCOW2_SUBCLUSTERS;
      const sc = Math.floor(inCluster / sub);
      n = Math.min(n, sub - (inCluster % sub));
      const bitmap = l2.getBigUint64(l2Index * this.l2EntrySize + 8);
      const allocated = ((bitmap >> BigInt(sc)) & 1n) === 1n;
      zero = ((bitmap >> BigInt(32 + sc)) & 1n) === 1n;
      if (allocated && zero)
        throw this.image.error(
          entryAt + 8,
          where,
          `subcluster ${sc} allocated or reading as zeros`,
          'both bits set (QEMU: an invalid subcluster)',
          'bad-value',
        );
      if (!allocated) zero = true; // unallocated: the VM state has no backing file to fall through to
    }
    if (zero || dataOffset === 0) return { kind: 'zeros', n };
    if (dataOffset % this.clusterSize !== 0 || dataOffset + this.clusterSize > this.image.fileSize)
      throw this.image.error(
        entryAt,
        where,
        `a data cluster inside the image (${hex(this.image.fileSize)} bytes), cluster-aligned`,
        `cluster offset ${hex(dataOffset)}`,
        'bad-value',
      );
    return { kind: 'file', n, fileOffset: dataOffset + inCluster };
  }

  /**
   * A compressed cluster (qcow2.txt "Compressed Clusters Descriptor", x = 62 - (cluster_bits - 8)):
   * bits 0 to x-1 the byte offset of its data, bits x to 61 the 512-byte sectors it spans
   * beyond the first. QEMU inflates it (raw deflate for compression type zlib) and needs a
   * whole cluster out of it.
   */
  private inflate(entry: bigint, entryAt: number, where: readonly string[]): Uint8Array {
    if (this.inflated?.entry === entry) return this.inflated.data;
    const x = BigInt(62 - (this.image.clusterBits - 8));
    const offset = Number(entry & ((1n << x) - 1n));
    const sectors = Number((entry >> x) & ((1n << BigInt(this.image.clusterBits - 8)) - 1n)) + 1;
    const size = Math.min(sectors * 512 - (offset % 512), this.image.fileSize - offset);
    if (offset <= 0 || size <= 0)
      throw this.image.error(
        entryAt,
        where,
        `compressed data inside the image (${hex(this.image.fileSize)} bytes)`,
        `offset ${hex(offset)}`,
        'bad-value',
      );
    const packed = this.image.bytes(offset, size, 'compressed cluster data', where);
    const zstd = this.image.compression === 'zstd';
    let data: Uint8Array;
    try {
      // bounded by the cluster: compressed data cannot make this allocate more than one
      data = zstd
        ? zstdCluster(packed, this.clusterSize)
        : zlib().inflateRawSync(packed, {
            finishFlush: zlib().constants.Z_SYNC_FLUSH,
            maxOutputLength: this.clusterSize,
          });
    } catch (e) {
      throw this.image.error(
        offset,
        where,
        `${zstd ? 'zstd frames' : 'raw deflate data'} of one ${this.clusterSize}-byte cluster`,
        e instanceof Error ? e.message : String(e),
        'bad-value',
      );
    }
    if (data.length < this.clusterSize)
      throw this.image.error(
        offset,
        where,
        `a whole ${this.clusterSize}-byte cluster once inflated`,
        `${data.length} bytes`,
        'bad-value',
      );
    this.inflated = { entry, data };
    return data;
  }

  close(): void {}

  private where(): string[] {
    return [`snapshot ${this.snapshot.id} "${this.snapshot.name}"`];
  }

  private l2Table(offset: number, l1Index: number, path: readonly string[]): DataView {
    if (this.l2?.offset === offset) return this.l2.table;
    if (offset % this.clusterSize !== 0 || offset + this.clusterSize > this.image.fileSize)
      throw this.image.error(
        this.snapshot.l1TableOffset + l1Index * 8,
        [...path, `L1 entry ${l1Index}`],
        `an L2 table inside the image (${hex(this.image.fileSize)} bytes), cluster-aligned`,
        `L2 table offset ${hex(offset)}`,
        'bad-value',
      );
    const b = this.image.bytes(offset, this.clusterSize, 'an L2 table', path);
    this.l2 = { offset, table: new DataView(b.buffer, b.byteOffset, b.byteLength) };
    return this.l2.table;
  }
}

/** Thrown by zstdCluster's output handler once the cluster is whole: the decoder stops there. */
const CLUSTER_FULL = new Error('cluster full');

/**
 * A zstd-compressed cluster (qcow2 compression type 1): zstd frames, one after another, read
 * until a whole cluster has come out of them, as QEMU's qcow2_zstd_decompress does; what
 * follows in the last sector is not looked at. The decoder is stopped as soon as the cluster
 * is whole, so frames that would inflate to more cost no more than the cluster.
 */
function zstdCluster(packed: Uint8Array, clusterSize: number): Uint8Array {
  const out = new Uint8Array(clusterSize);
  let got = 0;
  const decoder = zstdDecoder((chunk) => {
    const n = Math.min(chunk.length, clusterSize - got);
    out.set(chunk.subarray(0, n), got);
    got += n;
    if (got === clusterSize) throw CLUSTER_FULL;
  });
  try {
    decoder.push(packed, true);
  } catch (e) {
    if (e !== CLUSTER_FULL) throw e;
  }
  return got === clusterSize ? out : out.subarray(0, got);
}

/** Whether the file starts with QCOW2_MAGIC (false when it cannot be read). */
export function isQcow2File(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const head = new Uint8Array(4);
      return readSync(fd, head, 0, 4, 0) === 4 && be32At(head, 0) === QCOW2_MAGIC;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
