/**
 * The multifd channels of a machine model, both directions: `generateChannel` writes what
 * a channel carried from the model's packet list (migration/multifd.c, multifd-nocomp.c,
 * multifd-zero-page.c), `extractChannels` reads the channels back into that list, merging
 * them by packet_num so that the memory images end with each page's last content.
 */
import { isZero } from '../io/bytes.js';
import {
  MULTIFD_COMPRESSION_FLAG,
  MULTIFD_MAGIC,
  MULTIFD_PACKET_BYTES_OF_PAGES,
  MULTIFD_VERSION,
  MultifdFlag,
} from '../../grammar/multifd.js';
import { versionAtLeast } from '../../grammar/version.js';
import type { MultifdRamPacketRecord, MultifdRecord } from '../model/multifd-records.js';
import { cString } from '../multifd/codec.js';
import { ModelError, PageContent } from './engine.js';
import { MULTIFD_ROUND_BASE, type MachineModel, type MultifdDeviceBuffer, type MultifdPacketModel } from './model.js';
import { fixedSize } from '../../grammar/layout.js';
import { VfioDeviceStatePacketHeader } from '../../grammar/vfio.js';

const VFIO_BUFFER_HEADER_BYTES = fixedSize(VfioDeviceStatePacketHeader) ?? 12;
import type { ModelFiles } from './side-files.js';

const r0 = { offset: 0, length: 0 };

function expand(runs: readonly [number, number][]): number[] {
  const out: number[] = [];
  for (const [first, count] of runs) for (let i = 0; i < count; i++) out.push(first + i);
  return out;
}

/** Consecutive ascending pages as [first, count] runs, in the order given. */
export function toRuns(pages: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const p of pages) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === p) last[1]++;
    else runs.push([p, 1]);
  }
  return runs;
}

/**
 * multifd_send_zero_page_detect (9.0+): walk the queued pages from both ends, swapping each
 * zero page with the last unchecked one, so normal pages end up first. Returns the new order
 * and how many are normal.
 */
export function partitionZeroPages(pages: readonly number[], zero: (page: number) => boolean): [number[], number] {
  const a = [...pages];
  let i = 0;
  let j = a.length - 1;
  while (i <= j) {
    if (!zero(a[i] as number)) {
      i++;
      continue;
    }
    [a[i], a[j]] = [a[j] as number, a[i] as number];
    j--;
  }
  return [a, i];
}

/** Rules that changed in 9.0: zero-page detection in the channels, packets built fresh (no fields left from the one before). */
function multifdRules(m: MachineModel): { zeroDetect: boolean; freshSync: boolean } {
  const v9 = versionAtLeast(m.qemu, 9, 0);
  return { zeroDetect: v9 && m.settings.zeroPageDetection !== 'none', freshSync: v9 };
}

/** The records of multifd channel `index`. */
export function* generateChannel(m: MachineModel, files: ModelFiles, index: number): Generator<MultifdRecord> {
  const mf = m.multifd;
  const channel = mf?.channels[index];
  if (!mf || !channel) throw new ModelError(`the model has no multifd channel ${index}`);
  const pageSize = m.machine.targetPageSize;
  const entries = MULTIFD_PACKET_BYTES_OF_PAGES / pageSize;
  const compression = MULTIFD_COMPRESSION_FLAG[mf.compression];
  if (compression === undefined) throw new ModelError(`multifd compression ${mf.compression} is not one QEMU has`);
  const rules = multifdRules(m);
  const content = new PageContent(m, files);
  const uuid = new Uint8Array(16);
  if (mf.uuid) uuid.set(Buffer.from(mf.uuid, 'hex'));
  yield {
    kind: 'multifd_init',
    ...r0,
    fields: { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, uuid, id: index, unused: new Uint8Array(39) },
  };
  // what a channel's packet buffer keeps from one packet to the next
  const offsets = new Uint8Array(entries * 8);
  const offsetsView = new DataView(offsets.buffer);
  let ramblock = new Uint8Array(256);
  let next = 0;
  let syncs = 0;
  for (const p of channel.packets) {
    if (p.device) {
      yield* deviceStatePacket(p.device, m, files);
      continue;
    }
    const flags = p.sync ? MultifdFlag.MULTIFD_FLAG_SYNC : 0;
    const header = { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, flags };
    if (!safeNum(p.num)) throw new ModelError(`packet_num ${p.num}: not a packet number`);
    if (p.block === undefined || !p.pages?.length) {
      // a packet without pages: 9.0+ clears its fields, older senders repeat the last packet's
      if (rules.freshSync) {
        ramblock = new Uint8Array(256);
        next = 0;
        offsets.fill(0);
      }
      const fields = {
        pagesAlloc: rules.freshSync ? 0 : entries,
        normalPages: 0,
        nextPacketSize: next,
        packetNum: BigInt(p.num),
        zeroPages: 0,
        unused: new Uint8Array(28),
        ramblock,
      };
      yield { kind: 'multifd_packet', ...r0, header, fields, offsets: offsets.slice() };
      if (p.sync) syncs++;
      continue;
    }
    const block = m.ram.blocks[p.block];
    if (!block) throw new ModelError(`multifd packet ${p.num} names block ${p.block}`);
    const round = MULTIFD_ROUND_BASE + syncs;
    const queued = expand(p.pages);
    if (queued.length > entries) throw new ModelError(`multifd packet ${p.num}: more than ${entries} pages`);
    let order = queued;
    let normal = queued.length;
    if (p.payload) {
      // compressed: the order and split travel with the carried payload
      normal = p.normal ?? queued.length;
    } else if (rules.zeroDetect) {
      [order, normal] = partitionZeroPages(queued, (page) => isZero(content.page(p.block as number, page, round)));
    }
    if (rules.freshSync) offsets.fill(0); // 9.0+ fills a cleared packet; older senders overwrite the last one
    order.forEach((page, i) => offsetsView.setBigUint64(i * 8, BigInt(page * pageSize)));
    let payload: Uint8Array;
    if (p.payload) {
      if (!m.ram.encodedFile) throw new ModelError('a compressed multifd payload needs ram.encodedFile');
      payload = files.read(m.ram.encodedFile, p.payload[0], p.payload[1]);
    } else {
      if (compression !== MultifdFlag.MULTIFD_FLAG_NOCOMP)
        throw new ModelError(`multifd packet ${p.num}: ${mf.compression} payloads are not derived, give payload`);
      payload = new Uint8Array(normal * pageSize);
      for (let i = 0; i < normal; i++) payload.set(content.page(p.block, order[i] as number, round), i * pageSize);
    }
    ramblock = new Uint8Array(256);
    ramblock.set(Buffer.from(block.idstr, 'latin1'));
    next = payload.length;
    const fields = {
      pagesAlloc: entries,
      normalPages: normal,
      nextPacketSize: next,
      packetNum: BigInt(p.num),
      zeroPages: queued.length - normal,
      unused: new Uint8Array(28),
      ramblock,
    };
    header.flags |= compression;
    yield { kind: 'multifd_packet', ...r0, header, fields, offsets: offsets.slice() };
    if (payload.length) yield { kind: 'multifd_payload', ...r0, data: payload };
    if (p.sync) syncs++;
  }
}

/** A device-state packet (10.0+, multifd_queue_device_state): the VFIO buffer header, then its data. */
function* deviceStatePacket(d: MultifdDeviceBuffer, m: MachineModel, files: ModelFiles): Generator<MultifdRecord> {
  if (!m.deviceDataFile) throw new ModelError("a multifd device-state buffer needs the model's deviceDataFile");
  const idstr = new Uint8Array(256);
  const name = Buffer.from(d.idstr, 'latin1');
  if (name.length > 255) throw new ModelError(`device-state idstr ${d.idstr}: longer than 255 bytes`);
  idstr.set(name);
  const [at, size] = d.data;
  yield {
    kind: 'multifd_device_state',
    ...r0,
    header: { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, flags: MultifdFlag.MULTIFD_FLAG_DEVICE_STATE },
    fields: { idstr, instanceId: d.instanceId, nextPacketSize: VFIO_BUFFER_HEADER_BYTES + size },
  };
  yield { kind: 'multifd_vfio_buffer', ...r0, version: d.version, idx: d.idx, flags: d.flags };
  if (size) yield { kind: 'multifd_payload', ...r0, data: files.read(m.deviceDataFile, at, size) };
}

function safeNum(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** What extraction needs from the main-channel extractor: the blocks, and how to record a send. */
export interface ChannelSink {
  /** VFIO device-state data to the model's deviceDataFile; returns where it went */
  appendDeviceData(data: Uint8Array): number;
  blockIndex: ReadonlyMap<string, number>;
  /** a page went out with this content in this round (undefined: content not known, compressed) */
  sent(block: number, page: number, round: number, content: Uint8Array | undefined): void;
  /** the content a page has now (what the zero-page split is checked against) */
  current(block: number, page: number): Uint8Array;
  appendEncoded(data: Uint8Array): number;
}

interface Pending {
  channel: number;
  packet: MultifdRamPacketRecord | MultifdDeviceBuffer;
  payload: Uint8Array;
}

/** Read channels into the model's packet lists, in packet_num order across channels. */
export function extractChannels(
  m: MachineModel,
  channels: Iterable<MultifdRecord>[],
  sink: ChannelSink,
): NonNullable<MachineModel['multifd']> {
  const pageSize = m.machine.targetPageSize;
  const rules = multifdRules(m);
  const unsupported = (what: string): never => {
    throw new ModelError(`the model does not describe ${what} yet`);
  };
  const out: NonNullable<MachineModel['multifd']> = { compression: 'none', channels: [] };
  const iters = channels.map((c) => c[Symbol.iterator]());
  const pull = (i: number): MultifdRecord | undefined => {
    const r = iters[i]?.next();
    return !r || r.done ? undefined : r.value;
  };
  const peeked: (MultifdRecord | undefined)[] = iters.map((_, i) => pull(i));
  iters.forEach((_, i) => {
    const init = peeked[i];
    if (init?.kind !== 'multifd_init') return unsupported(`a multifd channel without MultiFDInit`);
    if (init.fields.id !== i) unsupported(`multifd channels given out of their id order (${init.fields.id} as ${i})`);
    const uuid = Buffer.from(init.fields.uuid).toString('hex');
    if (!isZero(init.fields.uuid)) out.uuid = uuid;
    out.channels.push({ packets: [] });
    peeked[i] = pull(i);
  });
  /** the next packet of channel i with its payload (copied: the other channels are read meanwhile) */
  const take = (i: number): Pending | undefined => {
    const rec = peeked[i];
    if (!rec) return undefined;
    let packet: Pending['packet'];
    let nxt = pull(i);
    if (rec.kind === 'multifd_device_state') {
      if (nxt?.kind !== 'multifd_vfio_buffer') return unsupported('device-state packets of other devices than VFIO');
      const idstr = cString(rec.fields.idstr);
      packet = {
        idstr,
        instanceId: rec.fields.instanceId,
        version: nxt.version,
        idx: nxt.idx,
        flags: nxt.flags,
        data: [0, 0],
      };
      if (rec.header.flags !== MultifdFlag.MULTIFD_FLAG_DEVICE_STATE)
        unsupported('device-state packet flags other than DEVICE_STATE');
      nxt = pull(i);
    } else if (rec.kind === 'multifd_packet') packet = rec;
    else return unsupported(`multifd ${rec.kind} records out of place`);
    const parts: Uint8Array[] = [];
    while (nxt?.kind === 'multifd_payload') {
      parts.push(Uint8Array.from(nxt.data));
      nxt = pull(i);
    }
    peeked[i] = nxt;
    return { channel: i, packet, payload: Uint8Array.from(Buffer.concat(parts)) };
  };
  const heads = iters.map((_, i) => take(i));
  const syncs = iters.map(() => 0);
  for (;;) {
    let best = -1;
    // device-state packets have no packet_num and touch no RAM: they go first, in their channel's order
    const order = (p: Pending['packet']): bigint => ('kind' in p ? p.fields.packetNum : -1n);
    heads.forEach((h, i) => {
      const b = heads[best];
      if (h && (!b || order(h.packet) < order(b.packet))) best = i;
    });
    const h = heads[best];
    if (!h) break;
    heads[best] = take(best);
    const { payload } = h;
    if (!('kind' in h.packet)) {
      const device: MultifdDeviceBuffer = {
        ...h.packet,
        data: [payload.length ? sink.appendDeviceData(payload) : 0, payload.length],
      };
      out.channels[best]?.packets.push({ num: 0, device });
      continue;
    }
    const packet = h.packet;
    const f = packet.fields;
    const model: MultifdPacketModel = { num: Number(f.packetNum) };
    if (!safeNum(model.num)) unsupported(`packet_num ${f.packetNum}`);
    const flags = packet.header.flags;
    if (flags & MultifdFlag.MULTIFD_FLAG_SYNC) model.sync = true;
    const compression = flags & ~MultifdFlag.MULTIFD_FLAG_SYNC;
    const n = f.normalPages + f.zeroPages;
    if (n) {
      const method = Object.entries(MULTIFD_COMPRESSION_FLAG).find(([, v]) => v === compression)?.[0];
      if (method === undefined) return unsupported(`multifd packet flags 0x${flags.toString(16)}`);
      out.compression = method;
      const block = sink.blockIndex.get(cString(f.ramblock));
      if (block === undefined) return unsupported(`a multifd packet of unknown block ${cString(f.ramblock)}`);
      const dv = new DataView(packet.offsets.buffer, packet.offsets.byteOffset, packet.offsets.length);
      const wire: number[] = [];
      for (let i = 0; i < n; i++) wire.push(Number(dv.getBigUint64(i * 8)) / pageSize);
      if (wire.some((p) => !Number.isInteger(p))) unsupported('multifd page offsets not aligned to the page size');
      model.block = block;
      const round = MULTIFD_ROUND_BASE + (syncs[best] ?? 0);
      if (method !== 'none') {
        // the compressor's stream state is not derived: payload, order and split are carried
        model.pages = toRuns(wire);
        model.normal = f.normalPages;
        model.payload = [sink.appendEncoded(payload), payload.length];
        wire.forEach((p, i) => sink.sent(block, p, round, i < f.normalPages ? undefined : new Uint8Array(pageSize)));
      } else {
        const queued = rules.zeroDetect ? [...wire].sort((a, b) => a - b) : wire;
        wire.forEach((p, i) =>
          sink.sent(
            block,
            p,
            round,
            i < f.normalPages ? payload.subarray(i * pageSize, (i + 1) * pageSize) : new Uint8Array(pageSize),
          ),
        );
        if (rules.zeroDetect) {
          const [order, normal] = partitionZeroPages(queued, (p) => isZero(sink.current(block, p)));
          if (normal !== f.normalPages || order.some((p, i) => p !== wire[i]))
            unsupported(`multifd packet ${f.packetNum}: pages in an order zero-page detection does not give`);
        }
        model.pages = toRuns(queued);
      }
    }
    out.channels[best]?.packets.push(model);
    if (model.sync) syncs[best] = (syncs[best] ?? 0) + 1;
  }
  return out;
}
