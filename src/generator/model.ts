/**
 * The machine model: what `migstream model` extracts from a stream and `migstream gen`
 * turns back into one. It describes the machine and the migration's settings, not the
 * stream's records: the engine (generator/engine.ts) derives section ids in use, section
 * kinds and their order, RAM record headers (flags, CONTINUE, block names, MEM_SIZE total),
 * commands (return path, PING, POSTCOPY_ADVISE, SWITCHOVER_START), footers, the
 * vmdescription JSON and the configuration section from it, as QEMU's qemu_savevm_state
 * does. JSON Schema: schemas/migstream-model.schema.json.
 *
 * Page contents and large payloads live in side files next to the model (paths relative
 * to the model file), so the model of a large stream stays small.
 */
import type { VmsdDescription } from '../vmstate/vmdesc.js';
import type { IterableDeviceModel, VfioItem } from './vfio-model.js';

export const MODEL_FORMAT = 'migstream-model';
export const MODEL_VERSION = 1;

export interface MachineModel {
  format: typeof MODEL_FORMAT;
  version: typeof MODEL_VERSION;
  /** QEMU release whose framing rules apply, "X.Y" (7.2, 8.0, ..., 11.1) */
  qemu: string;
  machine: MachineDescription;
  settings: MigrationSettings;
  ram: RamModel;
  /** multifd: the channels and the packets each carried */
  multifd?: MultifdModel;
  /** iterable devices other than RAM (VFIO), in handler order: their START, PART and END sections */
  iterables?: IterableDeviceModel[];
  /** the non-iterable devices, in the order QEMU's handler list saves them (their FULL sections) */
  devices: DeviceModel[];
  /** side file of VFIO device data (DEV_DATA_STATE chunks and multifd device-state buffers) */
  deviceDataFile?: string;
  /** what the engine cannot derive yet, carried as it was found; each is counted by `model --stats` */
  overrides?: ModelOverrides;
}

export interface MachineDescription {
  /** -machine type as the configuration section names it */
  type: string;
  /** -uuid, 32 hex digits; sent in the configuration when settings.validateUuid */
  uuid?: string;
  /** TARGET_PAGE_SIZE (4096 on x86) */
  targetPageSize: number;
}

export interface MigrationSettings {
  /** send-configuration (machine property; off for old machine types) */
  sendConfiguration: boolean;
  /** send-section-footer (machine property) */
  sendSectionFooter: boolean;
  /** false when suppress-vmdesc is on: no vmdescription after QEMU_VM_EOF */
  vmdescription: boolean;
  /** migration capabilities on the source, QEMU's names */
  capabilities: string[];
  /** validate-uuid: the configuration carries machine.uuid */
  validateUuid?: boolean;
  /** compress-level (7.2's compress capability), 1 by default */
  compressLevel?: number;
  /** zero-page-detection: "legacy" (zero pages as RAM_SAVE_FLAG_ZERO, the default) or "none" */
  zeroPageDetection?: 'legacy' | 'none';
}

export interface RamModel {
  /** the SaveStateEntry of "ram": its section id (registration order) and version */
  sectionId: number;
  instanceId: number;
  version: number;
  blocks: RamBlockModel[];
  /** the precopy iterations: one QEMU_VM_SECTION_PART each, pages in the order they were sent */
  iterations: RamRound[];
  /** what ram_save_complete sends (the QEMU_VM_SECTION_END) */
  complete: RamRound;
  /**
   * Content of sends that a later send of the same page superseded, in the order of this
   * list: entry i is the page at offset i * page size of `historyFile`. A send not listed
   * here carries the page's final content (the block's image).
   */
  history?: HistoryEntry[];
  historyFile?: string;
  /** side file of the encoded bytes of XBZRLE and COMPRESS_PAGE sends */
  encodedFile?: string;
}

/** [block index, page index, round] where round is the iteration index, or -1 for `complete` */
export type HistoryEntry = [number, number, number];

/**
 * Multifd channels (migration/multifd.c): which packets each channel carried, in its order.
 * The engine derives everything else of a packet: flags, pages_alloc, the normal/zero split
 * and its order (multifd zero-page detection, 9.0+), next_packet_size, the block name,
 * the offset array (a per-channel buffer whose unused tail keeps the previous packet's
 * entries), what SYNC packets repeat of the packet before them (before 9.0) and, without
 * compression, the page data.
 */
export interface MultifdModel {
  /** multifd-compression: "none", "zlib", "zstd", ... */
  compression: string;
  /** the source's -uuid as MultiFDInit carries it, 32 hex digits (absent: zero) */
  uuid?: string;
  channels: { packets: MultifdPacketModel[] }[];
}

export interface MultifdPacketModel {
  /** packet_num: one counter over all channels (0 for device-state packets, which have none) */
  num: number;
  /** a MULTIFD_FLAG_SYNC packet */
  sync?: boolean;
  /** a RAM packet: its block (index into ram.blocks) and the pages queued, as [first, count] runs in queue order */
  block?: number;
  pages?: [number, number][];
  /** compressed channels: the packet's payload, [offset, length] in ram.encodedFile (the compressor's stream state is not derived) */
  payload?: [number, number];
  /** with payload: how many of the pages (in wire order) are normal pages, the rest zero pages */
  normal?: number;
  /** a device-state packet (MULTIFD_FLAG_DEVICE_STATE, 10.0+; no packet_num): a VFIO buffer */
  device?: MultifdDeviceBuffer;
}

export interface MultifdDeviceBuffer {
  idstr: string;
  instanceId: number;
  /** VFIODeviceStatePacket: version, idx (reassembly order), flags (VFIO_DEVICE_STATE_CONFIG_STATE) */
  version: number;
  idx: number;
  flags: number;
  /** the buffer's data: [offset, length] in deviceDataFile */
  data: [number, number];
}

/**
 * Sends of multifd packets have rounds of their own in ram.history: MULTIFD_ROUND_BASE plus
 * the number of SYNC packets before them in their channel (a page goes out once per pass).
 */
export const MULTIFD_ROUND_BASE = 1_000_000;

export interface RamBlockModel {
  idstr: string;
  usedLength: number;
  /** the block's host page size, sent with postcopy-ram when it differs from the target page size */
  pageSize?: number;
  /** x-ignore-shared: the MemoryRegion address sent with the block */
  mrAddr?: number;
  /** the block's memory (final content), a side file; absent: all zero */
  image?: string;
}

export interface RamRound {
  runs: PageRun[];
  /** multifd: the round ended a dirty-bitmap pass (RAM_SAVE_FLAG_MULTIFD_FLUSH after the pages) */
  multifdFlush?: boolean;
}

/**
 * Pages sent one after another: `count` pages of block `block` (index into ram.blocks)
 * from page `first`. Without `as`, each page goes out as RAM_SAVE_FLAG_ZERO when its
 * content is zero (zero-page detection on) and as RAM_SAVE_FLAG_PAGE otherwise. With
 * `as: "xbzrle"` the page goes out as the XBZRLE delta against its previous send (an
 * XBZRLE cache hit), with `as: "compress"` deflated at compress-level (7.2's compress
 * threads): the engine encodes both. `encoded` carries wire bytes it does not derive.
 */
export interface PageRun {
  block: number;
  first: number;
  count: number;
  /** how the pages went out when that is not derived from their content */
  as?: 'xbzrle' | 'compress' | 'page' | 'zero';
  /** an override: the wire bytes of this one page, [offset, length] in ram.encodedFile; xbzrle: its encoding byte */
  encoded?: [number, number];
  xbzrleEncoding?: number;
  /** as zero: the fill byte when not 0 */
  fill?: number;
}

/** A VMState-described device value: numbers for integers, booleans, hex strings for bytes, nested objects for structs. */
export type StateValue = number | string | boolean | StateValue[] | StateObject;
export interface StateObject {
  [field: string]: StateValue;
}

export interface DeviceModel {
  idstr: string;
  instanceId: number;
  /** se->section_id: QEMU numbers SaveStateEntries in registration order */
  sectionId: number;
  /** the section's version_id */
  version: number;
  /** the device's vmdescription entry without name and instance_id (its VMStateDescription as sent) */
  vmsd?: VmsdDescription & { size?: number };
  /** field values by name, subsections under "$subsections" (requires vmsd) */
  state?: StateObject;
  /** the payload bytes as hex, for devices without a description (suppress-vmdesc) */
  payload?: string;
  /** a VFIO device's FULL section (its config state, or DEV_CONFIG_LOAD_READY) */
  vfio?: VfioItem[];
}

export interface ModelOverrides {
  /** the vmdescription JSON text, when the one derived from the devices differs */
  vmdescription?: string;
}

/** What `model --stats` counts: explicit overrides (what the engine does not derive yet). */
export interface ModelStats {
  devices: number;
  describedDevices: number;
  vfioDevices: number;
  ramBlocks: number;
  multifdChannels: number;
  multifdPackets: number;
  iterations: number;
  pagesSent: number;
  xbzrlePages: number;
  compressedPages: number;
  overrides: Record<string, number>;
  overrideTotal: number;
}

export function modelStats(m: MachineModel): ModelStats {
  const overrides: Record<string, number> = {};
  const count = (k: string, n = 1): void => void (overrides[k] = (overrides[k] ?? 0) + n);
  let pagesSent = 0;
  let xbzrlePages = 0;
  let compressedPages = 0;
  for (const round of [...m.ram.iterations, m.ram.complete]) {
    for (const r of round.runs) {
      pagesSent += r.count;
      if (r.encoded) count(r.as === 'xbzrle' ? 'xbzrle-delta' : 'compressed-page-bytes');
      else if (r.as === 'page' || r.as === 'zero') count(`page-sent-as-${r.as}`);
      if (r.as === 'xbzrle') xbzrlePages += r.count;
      if (r.as === 'compress') compressedPages += r.count;
      if (r.fill) count('zero-page-fill');
    }
  }
  for (const d of m.devices) if (d.vmsd && d.payload !== undefined) count('device-payload');
  let multifdPackets = 0;
  for (const ch of m.multifd?.channels ?? [])
    for (const p of ch.packets) {
      multifdPackets++;
      if (p.payload) count('multifd-compressed-payload');
      for (const [, n] of p.pages ?? []) pagesSent += n;
    }
  if (m.overrides?.vmdescription !== undefined) count('vmdescription');
  return {
    devices: m.devices.length,
    describedDevices: m.devices.filter((d) => d.state).length,
    vfioDevices: m.iterables?.length ?? 0,
    ramBlocks: m.ram.blocks.length,
    multifdChannels: m.multifd?.channels.length ?? 0,
    multifdPackets,
    iterations: m.ram.iterations.length,
    pagesSent,
    xbzrlePages,
    compressedPages,
    overrides,
    overrideTotal: Object.values(overrides).reduce((a, b) => a + b, 0),
  };
}
