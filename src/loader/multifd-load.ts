/**
 * The destination's multifd side (migration/multifd.c, multifd-nocomp.c,
 * multifd-device-state.c, hw/vfio/migration-multifd.c), checked against what the main
 * channel established: RAM blocks, MULTIFD_FLUSH rounds, VFIO devices and their settings.
 * Spec: vfio-and-multifd.md §8-§9 and its verification file.
 */
import { DEFAULT_TARGET_PAGE_SIZE } from '../../grammar/ram.js';
import {
  MULTIFD_COMPRESSION_FLAG,
  MULTIFD_FLAG_COMPRESSION_MASK,
  MULTIFD_PACKET_BYTES_OF_PAGES,
  MULTIFD_RAM_PACKET_FIXED,
  MULTIFD_VERSION,
  MultifdFlag,
  MultifdOffset,
} from '../../grammar/multifd.js';
import { fieldOffset } from '../../grammar/layout.js';
import {
  isVfioIdstr,
  VFIO_DEVICE_STATE_CONFIG_STATE,
  VFIO_DEVICE_STATE_IDX_INVALID,
  VFIO_DEVICE_STATE_PACKET_VER_CURRENT,
  VfioDeviceStatePacketHeader,
  VfioTag,
} from '../../grammar/vfio.js';
import { StreamError, hex } from '../model/errors.js';
import { StreamReader } from '../io/reader.js';
import { BufferSource, type ByteSource } from '../io/source.js';
import type { CompressedPages } from '../multifd/compressed-pages.js';
import { PAGE_COMPRESSIONS, type PageCompression } from '../multifd/page-compressions.js';
import { cString, decodeMultifdChannel, MULTIFD_READER_CAPACITY } from '../multifd/codec.js';
import { readVfioPayload } from '../vfio/codec.js';
import { NEWEST_QEMU, type ReferenceLoader } from './load.js';
import { diagnosticFromStreamError, type Diagnostic } from '../model/diagnostic.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { ruleSpec, type RuleId } from '../../grammar/rules.js';
import { versionAtLeast } from '../../grammar/version.js';
import { uuidText } from './profile.js';
import type { MultifdDataOffload } from './multifd-data-offload.js';

/** The rule each compression's packet data answers to. */
const DATA_RULE = { zstd: 'multifd/zstd-data', zlib: 'multifd/zlib-data' } as const satisfies Record<
  PageCompression['name'],
  RuleId
>;
/** A capture of one side channel (a multifd channel, the return path) as validation takes it: its name in diagnostics and its bytes. */
export interface ChannelInput {
  name: string;
  source: ByteSource;
}

/** Where one VFIO buffer sits, so its bytes can be read again (extraction). */
export interface BufferLocation {
  channel: number;
  offset: number;
  length: number;
  idx: number;
  flags: number;
}

/** A compressed packet handed to the offload: what its diagnostic says, and where in the list it goes. */
interface OffloadedPacket {
  offset: number;
  at: number;
  method: PageCompression;
  bytes: number;
  /** the length of `diagnostics` when it was handed over */
  position: number;
}

interface DeviceBuffers {
  buffers: Map<number, BufferLocation>;
  last?: number;
  firstOffset: { channel: string; offset: number };
}

export class MultifdJoin {
  readonly diagnostics: Diagnostic[] = [];
  readonly devices = new Map<string, DeviceBuffers>();
  private ids = new Map<number, string>();
  private packetNums = new Map<bigint, string>();
  private compression: number | undefined;
  private uuid: Uint8Array | undefined;

  /** the capture name of each channel index, for diagnostics */
  private readonly channelNames: string[] = [];
  /** per channel, the packets handed to `offload`, by their number there */
  private readonly offloaded: OffloadedPacket[][] = [];

  /**
   * `main` undefined: a channel checked on its own (what needs the main channel is skipped).
   * `offload`: compressed packets are decompressed there (other threads), not here.
   */
  constructor(
    private readonly main: ReferenceLoader | undefined,
    private readonly channelCount: number,
    private readonly pageSize = DEFAULT_TARGET_PAGE_SIZE,
    private readonly offload?: MultifdDataOffload,
  ) {
    // the destination's method, when known; otherwise the first packet with pages sets it
    const method = main?.multifdCompression;
    if (method !== undefined) this.compression = MULTIFD_COMPRESSION_FLAG[method];
  }

  private report(rule: RuleId, channel: string, offset: number, path: string, message: string): void {
    this.diagnostics.push({ rule, channel, severity: ruleSpec(rule).severity, offset, path, message });
  }

  /**
   * Reads one channel to its end (streaming), checking every packet. `observe` sees each record
   * before it is checked (the tap reports a live channel's packets as they pass).
   */
  checkChannel(ch: ChannelInput, index: number, observe?: (rec: MultifdRecord) => void): void {
    this.channelNames[index] = ch.name;
    const r = new StreamReader(ch.source, MULTIFD_READER_CAPACITY);
    const pageCount = MULTIFD_PACKET_BYTES_OF_PAGES / this.pageSize;
    const m = this.main?.facts;
    const zeroPagesKnown = versionAtLeast(this.main?.destinationVersion ?? NEWEST_QEMU, 9, 0);
    let syncs = 0;
    let lastNum: bigint | undefined;
    let device: { key: string; idstr: string; at: number } | undefined;
    let pendingBuffer: { loc: BufferLocation; key: string; at: number; payload: Uint8Array[] } | undefined;
    /** the channel's compressed stream (zstd, zlib), and the pages the packet just read must decompress to */
    let stream: CompressedPages | undefined;
    let compressedPacket: { bytes: number; at: number; method: PageCompression } | undefined;
    const where = (off: number): string => `multifd channel ${index} > packet @${hex(off)}`;
    const flushBuffer = (): void => {
      if (!pendingBuffer) return;
      this.checkConfigBuffer(
        pendingBuffer.key,
        ch.name,
        pendingBuffer.at,
        where(pendingBuffer.at),
        pendingBuffer.payload,
      );
      pendingBuffer = undefined;
    };
    try {
      for (const rec of decodeMultifdChannel(r, this.pageSize)) {
        observe?.(rec);
        switch (rec.kind) {
          case 'multifd_init': {
            const f = rec.fields;
            const id = f.id;
            if (f.version !== MULTIFD_VERSION)
              this.report(
                'multifd/init-version',
                ch.name,
                MultifdOffset.init('version'),
                'MultiFDInit',
                `multifd: received packet version ${f.version} expected ${MULTIFD_VERSION}`,
              );
            if (id > this.channelCount)
              this.report(
                'multifd/init-id',
                ch.name,
                MultifdOffset.init('id'),
                'MultiFDInit',
                `multifd: received channel id ${id} is greater than number of channels ${this.channelCount}`,
              );
            const dup = this.ids.get(id);
            if (dup)
              this.report(
                'multifd/init-id-duplicate',
                ch.name,
                MultifdOffset.init('id'),
                'MultiFDInit',
                `multifd: received id '${id}' already setup' (also ${dup})`,
              );
            this.ids.set(id, ch.name);
            const uuid = f.uuid;
            const want = m?.uuid ?? this.uuid;
            if (want && Buffer.compare(Buffer.from(want), Buffer.from(uuid)) !== 0) {
              this.report(
                'multifd/init-uuid',
                ch.name,
                MultifdOffset.init('uuid'),
                'MultiFDInit',
                `multifd: received uuid '${uuidText(uuid)}' and expected uuid '${uuidText(want)}' for channel ${id}`,
              );
            }
            this.uuid ??= uuid;
            break;
          }
          case 'multifd_packet': {
            flushBuffer();
            device = undefined;
            const h = rec.header;
            const f = rec.fields;
            const at = rec.offset;
            const flags = h.flags;
            if (h.version !== MULTIFD_VERSION)
              this.report(
                'multifd/packet-version',
                ch.name,
                at + MultifdOffset.header('version'),
                where(at),
                `multifd: received packet version ${h.version}, expected ${MULTIFD_VERSION}`,
              );
            // the compression method is checked where pages are decompressed: packets with normal pages
            const comp = flags & MULTIFD_FLAG_COMPRESSION_MASK;
            if (f.normalPages === 0) {
              // SYNC-only packets carry no method bits
            } else if (this.compression === undefined) {
              this.compression = comp;
              if (this.main && comp !== MultifdFlag.MULTIFD_FLAG_NOCOMP) {
                const method = Object.keys(MULTIFD_COMPRESSION_FLAG).find((k) => MULTIFD_COMPRESSION_FLAG[k] === comp);
                this.report(
                  'multifd/compression-assumed',
                  ch.name,
                  at + MultifdOffset.header('flags'),
                  where(at),
                  `multifd ${index}: the pages are compressed (${method ?? hex(comp)}); without --multifd-compression the destination was taken to have multifd-compression=${method ?? '?'} (QEMU's default, none, refuses these packets)`,
                );
              }
            } else if (comp !== this.compression)
              this.report(
                'multifd/compression',
                ch.name,
                at + MultifdOffset.header('flags'),
                where(at),
                `multifd ${index}: flags received ${hex(flags)} flags expected ${hex(this.compression | (flags & MultifdFlag.MULTIFD_FLAG_SYNC))}`,
              );
            const method = PAGE_COMPRESSIONS.get(comp);
            compressedPacket =
              method && this.compression === comp && f.normalPages > 0 && !stream?.broken
                ? { bytes: f.normalPages * this.pageSize, at, method }
                : undefined;
            if (flags & MultifdFlag.MULTIFD_FLAG_SYNC) syncs++;
            // QEMU's receiver only traces packet_num, and 7.x re-sends empty packets with a
            // stale one: a broken sequence is worth a warning, not a refusal.
            const num = f.packetNum;
            const empty =
              f.normalPages + (zeroPagesKnown ? f.zeroPages : 0) === 0 && !(flags & MultifdFlag.MULTIFD_FLAG_SYNC);
            if (!empty) {
              if (lastNum !== undefined && num <= lastNum)
                this.report(
                  'multifd/packet-num',
                  ch.name,
                  at + MultifdOffset.ram('packetNum'),
                  where(at),
                  `packet_num ${num} does not increase (previous ${lastNum} on this channel)`,
                );
              const other = this.packetNums.get(num);
              if (other)
                this.report(
                  'multifd/packet-num',
                  ch.name,
                  at + MultifdOffset.ram('packetNum'),
                  where(at),
                  `packet_num ${num} also used on ${other}`,
                );
              this.packetNums.set(num, ch.name);
              lastNum = num;
            }
            const alloc = f.pagesAlloc;
            const normal = f.normalPages;
            // zero_pages exists from 9.0; older destinations read those bytes as unused[]
            const zero = zeroPagesKnown ? f.zeroPages : 0;
            if (alloc > pageCount)
              this.report(
                'multifd/pages-alloc',
                ch.name,
                at + MultifdOffset.ram('pagesAlloc'),
                where(at),
                `multifd: received packet with ${alloc} pages, expected ${pageCount}`,
              );
            if (normal > alloc)
              this.report(
                'multifd/normal-pages',
                ch.name,
                at + MultifdOffset.ram('normalPages'),
                where(at),
                `multifd: received packet with ${normal} non-zero pages, which exceeds maximum expected pages ${alloc}`,
              );
            // (past a normal_pages above pages_alloc, QEMU has stopped already: the bound is then 0)
            const zeroRoom = alloc - Math.min(normal, alloc);
            if (zero > zeroRoom)
              this.report(
                'multifd/zero-pages',
                ch.name,
                at + MultifdOffset.ram('zeroPages'),
                where(at),
                `multifd: received packet with ${zero} zero pages, expected maximum ${zeroRoom}`,
              );
            if (normal + zero > 0 && m) {
              const name = cString(f.ramblock.subarray(0, 255));
              const used = m.ramBlocks.get(name);
              if (used === undefined)
                this.report(
                  'multifd/unknown-ramblock',
                  ch.name,
                  at + MultifdOffset.ram('ramblock'),
                  where(at),
                  `multifd: unknown ram block ${name}`,
                );
              else {
                const dv = new DataView(rec.offsets.buffer, rec.offsets.byteOffset, rec.offsets.byteLength);
                for (let i = 0; i < Math.min(normal + zero, pageCount); i++) {
                  const off = Number(dv.getBigUint64(i * 8));
                  if (off > used - this.pageSize) {
                    this.report(
                      'multifd/offset',
                      ch.name,
                      at + MULTIFD_RAM_PACKET_FIXED + i * 8,
                      where(at),
                      `multifd: offset too long ${off} (max ${used - this.pageSize}) in ${name}`,
                    );
                    break;
                  }
                }
              }
            }
            break;
          }
          case 'multifd_device_state': {
            flushBuffer();
            const at = rec.offset;
            const flags = rec.header.flags;
            const raw = rec.fields.idstr;
            const idstr = cString(raw);
            const instance = rec.fields.instanceId;
            const key = instance ? `${idstr} (instance ${instance})` : idstr;
            device = { key, idstr, at };
            if (flags & MultifdFlag.MULTIFD_FLAG_SYNC)
              this.report(
                'multifd/device-state-sync',
                ch.name,
                at + MultifdOffset.header('flags'),
                where(at),
                'multifd: received SYNC device state packet',
              );
            if (rec.fields.nextPacketSize === 0)
              this.report(
                'multifd/device-state-empty',
                ch.name,
                at + MultifdOffset.deviceState('nextPacketSize'),
                where(at),
                'multifd: received empty device state packet',
              );
            if (raw[255] !== 0)
              this.report(
                'multifd/device-state-idstr',
                ch.name,
                at + MultifdOffset.deviceState('idstr') + 255,
                where(at),
                'unterminated multifd device state idstr',
              );
            const known = this.main ? this.main.vfioDevices().find((d) => d.idstr === idstr) : { idstr };
            if (!known) {
              this.report(
                'multifd/device-state-unknown',
                ch.name,
                at + MultifdOffset.deviceState('idstr'),
                where(at),
                `Unknown idstr ${idstr} or instance id ${instance} for load state buffer`,
              );
              device = undefined;
            } else if (this.main && !this.main.doesMultifdTransfer) {
              this.report(
                'vfio/device-state-not-multifd',
                ch.name,
                at,
                where(at),
                `${idstr}: got device state packet but not doing multifd transfer`,
              );
              device = undefined;
            } else if (isVfioIdstr(idstr) && rec.fields.nextPacketSize < 12 && rec.fields.nextPacketSize > 0) {
              this.report(
                'vfio/buffer-too-short',
                ch.name,
                at + MultifdOffset.deviceStatePayload,
                where(at),
                `${idstr}: packet too short at ${rec.fields.nextPacketSize} (min is 12)`,
              );
              device = undefined;
            }
            break;
          }
          case 'multifd_vfio_buffer': {
            if (!device) break;
            const at = device.at;
            const { idstr, key } = device;
            if (rec.version !== VFIO_DEVICE_STATE_PACKET_VER_CURRENT) {
              this.report(
                'vfio/buffer-version',
                ch.name,
                rec.offset,
                where(at),
                `${idstr}: packet has unknown version ${rec.version}`,
              );
              break;
            }
            if (rec.idx === VFIO_DEVICE_STATE_IDX_INVALID) {
              this.report(
                'vfio/buffer-index-invalid',
                ch.name,
                rec.offset + fieldOffset(VfioDeviceStatePacketHeader, 'idx'),
                where(at),
                `${idstr}: packet index is invalid`,
              );
              break;
            }
            let dev = this.devices.get(key);
            if (!dev) {
              dev = { buffers: new Map(), firstOffset: { channel: ch.name, offset: at } };
              this.devices.set(key, dev);
            }
            if (dev.buffers.has(rec.idx)) {
              this.report(
                'vfio/buffer-duplicate',
                ch.name,
                rec.offset + fieldOffset(VfioDeviceStatePacketHeader, 'idx'),
                where(at),
                `${idstr}: state buffer ${rec.idx} already filled`,
              );
              break;
            }
            // the buffer's data follows this header: remember where, for extraction
            const loc: BufferLocation = { channel: index, offset: r.offset, length: 0, idx: rec.idx, flags: rec.flags };
            dev.buffers.set(rec.idx, loc);
            if (rec.flags & VFIO_DEVICE_STATE_CONFIG_STATE) {
              dev.last = rec.idx;
              pendingBuffer = { loc, key, at, payload: [] };
            } else pendingBuffer = { loc, key: '', at, payload: [] };
            break;
          }
          case 'multifd_payload':
            if (compressedPacket) {
              const { bytes, at, method } = compressedPacket;
              if (this.offload) {
                // decompressed elsewhere; a failure goes where it would have been reported here
                const seq = this.offload.packet(index, method.name, rec.offset, rec.data.length, bytes);
                (this.offloaded[index] ??= [])[seq] = {
                  offset: rec.offset,
                  at,
                  method,
                  bytes,
                  position: this.diagnostics.length,
                };
              } else if (!(stream ??= method.open()).packet(rec.data, bytes))
                this.diagnostics.push(this.dataDiagnostic(index, ch.name, rec.offset, at, method, bytes));
              compressedPacket = undefined;
            }
            if (pendingBuffer) {
              pendingBuffer.loc.length += rec.data.length;
              if (pendingBuffer.key) pendingBuffer.payload.push(rec.data.slice());
            }
            break;
        }
      }
      flushBuffer();
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      this.diagnostics.push(diagnosticFromStreamError(e, ch.name));
    }
    if (!m) return;
    const mainRounds = m.multifdFlushes || m.ramEos;
    const what = m.multifdFlushes
      ? 'RAM_SAVE_FLAG_MULTIFD_FLUSH records'
      : 'RAM_SAVE_FLAG_EOS records (flush after each section)';
    if (syncs !== mainRounds) {
      this.report(
        'multifd/sync-count',
        ch.name,
        r.offset,
        `multifd channel ${index}`,
        `${syncs} SYNC packets on this channel, but the main channel has ${mainRounds} ${what}`,
      );
    }
  }

  /** A config buffer: DEV_CONFIG_STATE, the VFIOPCIDevice state, END_OF_STATE. */
  private checkConfigBuffer(key: string, channel: string, at: number, where: string, parts: Uint8Array[]): void {
    if (!key) return;
    const bytes = new Uint8Array(Buffer.concat(parts));
    if (bytes.length < 8 || new DataView(bytes.buffer).getBigUint64(0) !== VfioTag.DEV_CONFIG_STATE) {
      const got = bytes.length >= 8 ? hex(new DataView(bytes.buffer).getBigUint64(0)) : 'a short buffer';
      this.report(
        'vfio/config-buffer-flag',
        channel,
        at,
        where,
        `${key}: expected FLAG_DEV_CONFIG_STATE but got ${got}`,
      );
      return;
    }
    try {
      const r = new StreamReader(new BufferSource(bytes), Math.max(bytes.length, 16));
      const recs = [...readVfioPayload(r, { copy: true, warn: () => undefined })];
      const last = recs[recs.length - 1];
      if (last?.kind !== 'vfio_tag' || last.tag !== 'END_OF_STATE') {
        this.report(
          'vfio/config-end-flag',
          channel,
          at,
          where,
          `${key}: Failed loading device config space, end flag incorrect ${last?.kind === 'vfio_tag' ? hex(last.value) : ''}`,
        );
      } else if (r.offset !== bytes.length) {
        this.report(
          'vfio/config-end-flag',
          channel,
          at,
          where,
          `${key}: ${bytes.length - r.offset} bytes after END_OF_STATE in the config buffer`,
        );
      }
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      this.report(
        'vfio/config-end-flag',
        channel,
        at,
        where,
        `${key}: Failed to load device config space (${e.message})`,
      );
    }
  }

  /** A packet whose compressed data does not decompress to its pages. */
  private dataDiagnostic(
    index: number,
    channel: string,
    offset: number,
    at: number,
    method: PageCompression,
    bytes: number,
  ): Diagnostic {
    const rule = DATA_RULE[method.name];
    return {
      rule,
      channel,
      severity: ruleSpec(rule).severity,
      offset,
      path: `multifd channel ${index} > packet @${hex(at)}`,
      message: `multifd ${index}: the packet's ${method.name} data does not decompress to its ${bytes / this.pageSize} pages (QEMU's receiving thread fails on it and the migration never completes)`,
    };
  }

  /** The offload's verdicts, each put where checkChannel would have reported it (the list's order is as without offload). */
  private settleOffload(): void {
    if (!this.offload) return;
    const failed = [...this.offload.failures()].map(([index, seq]) => ({ index, p: this.offloaded[index]?.[seq] }));
    // from the last position back, later channels first at a tie: each insert leaves the earlier positions as they are
    failed.sort((a, b) => (b.p?.position ?? 0) - (a.p?.position ?? 0) || b.index - a.index);
    for (const { index, p } of failed) {
      if (!p) throw new Error(`multifd channel ${index}: the offload failed a packet it was not given`);
      const d = this.dataDiagnostic(
        index,
        this.channelNames[index] ?? `channel ${index}`,
        p.offset,
        p.at,
        p.method,
        p.bytes,
      );
      this.diagnostics.splice(p.position, 0, d);
    }
    this.offloaded.length = 0;
  }

  /** After every channel: buffer sets complete, the main channel's switchover interlocks. */
  finish(): Diagnostic[] {
    this.settleOffload();
    // a lone channel holds only some of each device's buffers: completeness needs them all
    if (!this.main) return this.diagnostics;
    for (let id = 0; id < this.channelCount; id++) {
      if (!this.ids.has(id))
        this.report(
          'multifd/channel-missing',
          'main',
          0,
          'multifd channels',
          `multifd channel ${id} of ${this.channelCount} never connects: the destination waits for it forever (ids that connected: ${[...this.ids.keys()].sort((x, y) => x - y).join(', ') || 'none'}; --multifd-channels N if the destination has another count)`,
        );
    }
    const m = this.main.facts;
    for (const [key, dev] of this.devices) {
      const where = `multifd device state of ${key}`;
      const at = dev.firstOffset;
      if (!m.switchoverStart) {
        this.report(
          'vfio/switchover-start-missing',
          at.channel,
          at.offset,
          where,
          `${key}: device state buffers, but no MIG_CMD_SWITCHOVER_START on the main channel: the load thread never starts (QEMU waits forever)`,
        );
      }
      if (dev.last === undefined) {
        this.report(
          'vfio/config-buffer-missing',
          at.channel,
          at.offset,
          where,
          `${key}: no buffer with VFIO_DEVICE_STATE_CONFIG_STATE: the load thread waits forever (QEMU reports nothing)`,
        );
        continue;
      }
      for (let i = 0; i < dev.last; i++) {
        if (!dev.buffers.has(i)) {
          this.report(
            'vfio/buffer-missing',
            at.channel,
            at.offset,
            where,
            `${key}: state buffer ${i} never arrives: the load thread waits forever for it (QEMU reports nothing)`,
          );
          break;
        }
      }
      for (const idx of dev.buffers.keys()) {
        if (idx > dev.last) {
          const loc = dev.buffers.get(idx)!;
          this.report(
            'vfio/buffer-after-config',
            this.channelNames[loc.channel] ?? `channel ${loc.channel}`,
            loc.offset,
            where,
            `${key}: state buffer ${idx} comes after the config buffer ${dev.last} and is never loaded`,
          );
        }
      }
      const info = this.main.vfioDevices().find((d) => d.idstr === key);
      if (this.main.loadConfigAfterIter && info && !info.loadReady) {
        this.report(
          'vfio/load-ready-missing',
          at.channel,
          at.offset,
          where,
          `${key}: x-migration-load-config-after-iter is on but DEV_CONFIG_LOAD_READY never came: the config load waits forever`,
        );
      }
    }
    return this.diagnostics;
  }
}
