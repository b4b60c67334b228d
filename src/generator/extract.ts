/**
 * `migstream model`: the machine model a main-channel stream was saved from, the inverse
 * of generator/engine.ts. It reads the records once, in order, and keeps what the engine
 * cannot derive: the machine (type, uuid, page size), the settings the framing shows
 * (configuration, footers, return path, postcopy advise, multifd flushes, zero-page
 * detection, suppress-vmdesc), the RAMBlocks, which pages each round sent, the memory
 * (block images in side files, superseded contents in a history file), and each device's
 * vmsd with its field values. What the engine does not derive yet (XBZRLE deltas,
 * compressed pages, a vmdescription that differs from the derived one) becomes a named
 * override, counted by modelStats.
 */
import { isZero, sameBytes } from '../io/bytes.js';
import { zlib } from '../io/zlib.js';
import { QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION } from '../../grammar/savevm.js';
import { isReleaseText, versionAtLeast } from '../../grammar/version.js';
import { DEFAULT_TARGET_PAGE_SIZE, ENCODING_FLAG_XBZRLE, RAM_SECTION_IDSTR } from '../../grammar/ram.js';
import type { MainRecord, RamRecord } from '../model/records.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { extractChannels } from './multifd-channels.js';
import { VfioItemReader, type IterableDeviceModel, type VfioItem } from './vfio-model.js';
import { isVfioIdstr } from '../../grammar/vfio.js';
import { applyXbzrle, encodeXbzrle } from '../ram/xbzrle.js';
import { deflate } from 'pako';
import { encodeToBytes } from '../codec/open.js';
import { DeviceIndex, parseVmDescription } from '../vmstate/vmdesc.js';
import { compressLevel, deviceRecord, ModelError, vmdescription } from './engine.js';
import {
  MODEL_FORMAT,
  MODEL_VERSION,
  type DeviceModel,
  type MachineModel,
  type PageRun,
  type RamRound,
} from './model.js';
import type { ModelFiles } from './side-files.js';
import { stateFromNode, StateShapeError } from './state-values.js';

/** Rounds by page, in chunks of 64 Ki pages allocated on first use. */
class SendRounds {
  private static readonly NEVER = -0x80000000;
  private chunks = new Map<number, Int32Array>();
  constructor(readonly pages: number) {}
  get(page: number): number | undefined {
    const v = this.chunks.get(Math.floor(page / 0x10000))?.[page % 0x10000];
    return v === undefined || v === SendRounds.NEVER ? undefined : v;
  }
  set(page: number, round: number): void {
    let c = this.chunks.get(Math.floor(page / 0x10000));
    if (!c) this.chunks.set(Math.floor(page / 0x10000), (c = new Int32Array(1 << 16).fill(SendRounds.NEVER)));
    c[page % 0x10000] = round;
  }
}

/** Where extraction writes the side files it names in the model. */
export interface ModelFilesWriter extends ModelFiles {
  write(file: string, position: number, data: Uint8Array): void;
  /** appends, returning the offset the data was written at */
  append(file: string, data: Uint8Array): number;
}

export interface ExtractOptions {
  /** the multifd channels of the stream, in channel id order */
  multifd?: Iterable<MultifdRecord>[];
  /** the QEMU release when the stream does not name it (no configuration section) */
  qemu?: string;
  /** prefix of the side files' names (e.g. "pc-paused.model/") */
  sidePrefix?: string;
  pageSize?: number;
}

/** "pc-i440fx-7.2" → "7.2" */
function releaseOfMachine(type: string): string | undefined {
  const m = /-(\d+\.\d+)$/.exec(type);
  return m?.[1] && isReleaseText(m[1]) ? m[1] : undefined;
}

export function extractModel(
  records: Iterable<MainRecord>,
  files: ModelFilesWriter,
  o: ExtractOptions = {},
): MachineModel {
  const prefix = o.sidePrefix ?? '';
  const pageSize = o.pageSize ?? DEFAULT_TARGET_PAGE_SIZE;
  const caps = new Set<string>();
  let machineType: string | undefined;
  let uuid: string | undefined;
  let sendConfiguration = false;
  let footers = 0;
  let sections = 0;
  let vmdescText: string | undefined;
  let sawSwitchoverStart = false;
  const ram: MachineModel['ram'] = {
    sectionId: -1,
    instanceId: 0,
    version: 0,
    blocks: [],
    iterations: [],
    complete: { runs: [] },
  };
  const blockIndex = new Map<string, number>();
  const devices: (DeviceModel & { node?: Extract<MainRecord, { kind: 'vmstate' }> })[] = [];
  let round: RamRound | undefined;
  let roundIndex = 0;
  let current: { kind: string; idstr: string } | undefined;
  // the round each page was last sent in: a 32-bit slot per page sent (64 MiB for a 64 GiB
  // guest, whatever the number of sends), allocated as pages are sent, not by the block's
  // claimed length
  const lastSend: SendRounds[] = [];
  const history: [number, number, number][] = [];
  const historyFile = `${prefix}history.bin`;
  const encodedFile = `${prefix}encoded.bin`;
  const deviceDataFile = `${prefix}device.bin`;
  const imageOf = (b: number): string => `${prefix}block${b}.img`;
  let zeroRecords = 0;
  let multifd: MachineModel['multifd'];

  const unsupported = (what: string): never => {
    throw new ModelError(`the model does not describe ${what} yet`);
  };

  /** Record a send of page `page` of block `b` with `content` in `round` (default: the current one). */
  const sent = (b: number, page: number, content: Uint8Array, round = roundIndex): void => {
    const slots = lastSend[b];
    if (!slots || page >= slots.pages) return unsupported(`page ${page} past the end of block ${b}`);
    const before = slots.get(page);
    if (before !== undefined) {
      if (before === round) unsupported(`a page sent twice in one round (block ${b} page ${page})`);
      history.push([b, page, before]);
      files.append(historyFile, files.read(imageOf(b), page * pageSize, pageSize));
    }
    slots.set(page, round);
    // images stay sparse: a zero page is only written over a page that was not zero
    if (!isZero(content) || (before !== undefined && !isZero(files.read(imageOf(b), page * pageSize, pageSize))))
      files.write(imageOf(b), page * pageSize, content);
  };

  const addRun = (run: PageRun): void => {
    if (!round) return unsupported('pages outside a RAM section');
    const last = round.runs[round.runs.length - 1];
    if (
      last &&
      last.block === run.block &&
      last.as === run.as &&
      !run.encoded &&
      !last.encoded &&
      last.fill === run.fill &&
      last.first + last.count === run.first
    )
      last.count++;
    else round.runs.push(run);
  };

  const pageRecord = (rec: Extract<RamRecord, { block: string }>): void => {
    const b = blockIndex.get(rec.block);
    if (b === undefined) return unsupported(`a page of an unknown block ${rec.block}`);
    if (rec.addr % pageSize) return unsupported(`a page address not aligned to the page size`);
    const page = rec.addr / pageSize;
    const run: PageRun = { block: b, first: page, count: 1 };
    switch (rec.op) {
      case 'zero': {
        zeroRecords++;
        if (rec.fill) {
          run.as = 'zero';
          run.fill = rec.fill;
        }
        sent(b, page, new Uint8Array(pageSize).fill(rec.fill));
        break;
      }
      case 'page': {
        if (isZero(rec.data)) run.as = 'page';
        sent(b, page, rec.data);
        break;
      }
      case 'xbzrle': {
        const prev = files.read(imageOf(b), page * pageSize, pageSize);
        const content = Uint8Array.from(prev);
        applyXbzrle(rec.data, content);
        run.as = 'xbzrle';
        const derived = rec.encoding === ENCODING_FLAG_XBZRLE ? encodeXbzrle(prev, content, pageSize) : undefined;
        if (!derived || !sameBytes(derived, rec.data)) {
          run.encoded = [files.append(encodedFile, rec.data), rec.data.length];
          if (rec.encoding !== ENCODING_FLAG_XBZRLE) run.xbzrleEncoding = rec.encoding;
        }
        sent(b, page, content);
        break;
      }
      case 'compress_page': {
        run.as = 'compress';
        const content = new Uint8Array(pageSize);
        content.set(zlib().inflateSync(rec.data).subarray(0, pageSize));
        if (!sameBytes(deflate(content, { level: compressLevel(undefined) }), rec.data))
          run.encoded = [files.append(encodedFile, rec.data), rec.data.length];
        sent(b, page, content);
        break;
      }
    }
    addRun(run);
  };

  // VFIO: the section being read, and where its items go when it ends
  const iterables: IterableDeviceModel[] = [];
  const written = { deviceData: false };
  const appendDeviceData = (data: Uint8Array): number => {
    written.deviceData = true;
    return files.append(deviceDataFile, data);
  };
  let vfio: { reader: VfioItemReader; done: (items: VfioItem[]) => void } | undefined;
  const closeVfio = (): void => {
    if (vfio) vfio.done(vfio.reader.finish());
    vfio = undefined;
  };
  const vfioSection = (rec: Extract<MainRecord, { kind: 'section' }>): void => {
    let d = iterables.find((x) => x.sectionId === rec.sectionId);
    if (!d) {
      if (rec.section !== 'START') return unsupported(`a VFIO ${rec.section} section before its START`);
      d = {
        idstr: rec.idstr,
        instanceId: rec.instanceId,
        sectionId: rec.sectionId,
        version: rec.versionId,
        iterations: [],
      };
      iterables.push(d);
    }
    const dev = d;
    const reader = new VfioItemReader(appendDeviceData);
    if (rec.section === 'START') vfio = { reader, done: (items) => (dev.setup = items) };
    else if (rec.section === 'END') vfio = { reader, done: (items) => (dev.complete = items) };
    else {
      // a device's PART belongs to the RAM iteration it follows
      const i = ram.iterations.length - 1;
      if (i < 0 || dev.iterations[i]) return unsupported('a VFIO PART section outside the RAM iterations');
      vfio = { reader, done: (items) => (dev.iterations[i] = items) };
    }
  };

  for (const rec of records) {
    if (rec.depth) unsupported('MIG_CMD_PACKAGED blobs (postcopy)');
    switch (rec.kind) {
      case 'libvirt_header':
        return unsupported('a libvirt save image header');
      case 'file_header':
        if (rec.magic !== QEMU_VM_FILE_MAGIC || rec.version !== QEMU_VM_FILE_VERSION)
          unsupported('a file header other than QEMU_VM_FILE_MAGIC version 3');
        break;
      case 'configuration':
        sendConfiguration = true;
        machineType = rec.machineType;
        for (const s of rec.subsections) {
          if (s.name === 'configuration/uuid' && s.fields.uuid instanceof Uint8Array)
            uuid = Buffer.from(s.fields.uuid).toString('hex');
          if (s.name === 'configuration/capabilities' && Array.isArray(s.fields.capabilities))
            for (const c of s.fields.capabilities)
              if (typeof c === 'object' && !(c instanceof Uint8Array) && typeof c.name === 'string') caps.add(c.name);
        }
        break;
      case 'command':
        if (rec.name === 'MIG_CMD_OPEN_RETURN_PATH') caps.add('return-path');
        else if (rec.name === 'MIG_CMD_POSTCOPY_ADVISE') {
          caps.delete('return-path');
          caps.add('postcopy-ram');
        } else if (rec.name === 'MIG_CMD_SWITCHOVER_START') sawSwitchoverStart = true;
        else if (rec.name !== 'MIG_CMD_PING') unsupported(`the command ${rec.name}`);
        break;
      case 'section':
        sections++;
        closeVfio();
        current = { kind: rec.section, idstr: rec.idstr };
        if (isVfioIdstr(rec.idstr) && rec.section !== 'FULL') {
          vfioSection(rec);
        } else if (rec.idstr === RAM_SECTION_IDSTR) {
          if (rec.section === 'FULL') unsupported('a FULL ram section');
          if (rec.section === 'START') {
            ram.sectionId = rec.sectionId;
            ram.instanceId = rec.instanceId;
            ram.version = rec.versionId;
            round = undefined;
          } else if (rec.section === 'PART') {
            roundIndex = ram.iterations.length;
            round = { runs: [] };
            ram.iterations.push(round);
          } else {
            roundIndex = -1;
            round = ram.complete;
          }
        } else if (rec.section === 'FULL') {
          const d: DeviceModel = {
            idstr: rec.idstr,
            instanceId: rec.instanceId,
            sectionId: rec.sectionId,
            version: rec.versionId,
          };
          devices.push(d);
          if (isVfioIdstr(rec.idstr)) {
            const items = new VfioItemReader(appendDeviceData);
            vfio = { reader: items, done: (list) => (d.vfio = list) };
          }
        } else unsupported(`the iterable section ${rec.idstr}`);
        break;
      case 'section_footer':
        footers++;
        current = undefined;
        closeVfio();
        break;
      case 'vfio_tag':
      case 'vfio_data':
      case 'vfio_pci_config':
        if (!vfio) return unsupported(`${rec.kind} outside a VFIO section`);
        vfio.reader.add(rec);
        break;
      case 'ram':
        if (rec.op === 'mem_size' || rec.op === 'eos' || rec.op === 'multifd_flush') {
          if (rec.op === 'multifd_flush') {
            caps.add('multifd');
            if (round) round.multifdFlush = true;
          }
          break;
        }
        if ('block' in rec) pageRecord(rec);
        break;
      case 'mapped_ram_bitmap':
        break; // derived from the pages written (checked when the model is proven)
      case 'mapped_ram_page': {
        const b = blockIndex.get(rec.block);
        if (b === undefined || !rec.present) return unsupported('mapped-ram slots with stale bytes');
        const content = new Uint8Array(pageSize);
        content.set(rec.data);
        roundIndex = -1;
        sent(b, rec.index, content);
        break;
      }
      case 'ram_block': {
        if (rec.mappedRam) caps.add('mapped-ram');
        blockIndex.set(rec.idstr, ram.blocks.length);
        lastSend.push(new SendRounds(Math.ceil(rec.usedLength / pageSize)));
        const b: MachineModel['ram']['blocks'][number] = { idstr: rec.idstr, usedLength: rec.usedLength };
        if (rec.pageSize !== undefined) b.pageSize = rec.pageSize;
        if (rec.mrAddr !== undefined) {
          b.mrAddr = rec.mrAddr;
          caps.add('x-ignore-shared');
        }
        ram.blocks.push(b);
        break;
      }
      case 'vmstate': {
        const d = devices[devices.length - 1];
        if (!d || current?.kind !== 'FULL') return unsupported('a VMState payload outside a FULL section');
        d.node = rec;
        break;
      }
      case 'raw': {
        const d = devices[devices.length - 1];
        if (!d || current?.kind !== 'FULL') return unsupported(`raw bytes outside a device section (${rec.reason})`);
        d.payload = (d.payload ?? '') + Buffer.from(rec.data).toString('hex');
        break;
      }
      case 'eof':
        closeVfio();
        break;
      case 'vmdescription':
        vmdescText = rec.json;
        break;
      default:
        unsupported(`${rec.kind} records`);
    }
  }

  if (!sections) unsupported('a stream without sections');
  if (footers && footers !== sections) unsupported('section footers on some sections only');
  if (ram.sectionId < 0) unsupported('a stream without a RAM section');

  const qemu = o.qemu ?? (machineType ? releaseOfMachine(machineType) : undefined);
  if (!qemu)
    throw new ModelError('the stream does not name its QEMU release (no configuration): give it (--qemu-version X.Y)');
  if (!isReleaseText(qemu)) throw new ModelError(`--qemu-version ${qemu}: expected X.Y`);

  if (o.multifd?.length) {
    caps.add('multifd');
    const partial = {
      qemu,
      machine: { type: machineType ?? '', targetPageSize: pageSize },
      settings: { sendConfiguration, sendSectionFooter: true, vmdescription: true, capabilities: [...caps] },
      ram,
      devices: [],
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
    } satisfies MachineModel;
    multifd = extractChannels(partial, o.multifd, {
      blockIndex,
      sent: (b, page, round, content) => {
        if (content) sent(b, page, content, round);
      },
      current: (b, page) => files.read(imageOf(b), page * pageSize, pageSize),
      appendEncoded: (data) => files.append(encodedFile, data),
      appendDeviceData,
    });
  }

  // zero-page-detection=none sends zero pages as normal pages: no RAM_SAVE_FLAG_ZERO at all
  const zeroAsPage = [...ram.iterations, ram.complete].flatMap((r) => r.runs).filter((r) => r.as === 'page');
  const zeroPageDetection = zeroAsPage.length && !zeroRecords ? 'none' : 'legacy';
  if (zeroPageDetection === 'none') for (const r of zeroAsPage) delete r.as;

  const model: MachineModel = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    qemu,
    machine: { type: machineType ?? '', targetPageSize: pageSize },
    settings: {
      sendConfiguration,
      sendSectionFooter: footers > 0,
      vmdescription: vmdescText !== undefined,
      capabilities: [...caps],
    },
    ram,
    devices: [],
  };
  if (multifd) model.multifd = multifd;
  if (iterables.length) {
    // every iteration has an entry (null: the device sent no PART then)
    for (const d of iterables) for (let i = 0; i < ram.iterations.length; i++) d.iterations[i] ??= null;
    model.iterables = iterables;
  }
  if (written.deviceData) model.deviceDataFile = deviceDataFile;
  if (uuid) {
    model.machine.uuid = uuid;
    model.settings.validateUuid = true;
  }
  if (zeroPageDetection === 'none') model.settings.zeroPageDetection = 'none';
  if (history.length) {
    ram.history = history;
    ram.historyFile = historyFile;
  }
  if (
    [...ram.iterations, ram.complete].some((r) => r.runs.some((x) => x.encoded)) ||
    multifd?.channels.some((c) => c.packets.some((p) => p.payload))
  )
    ram.encodedFile = encodedFile;
  // every block gets its image (sparse: a never-written block costs nothing), so it can be edited
  ram.blocks.forEach((b, i) => (b.image = imageOf(i)));
  if (sawSwitchoverStart !== versionAtLeast(qemu, 10, 0))
    unsupported(`MIG_CMD_SWITCHOVER_START ${sawSwitchoverStart ? 'in' : 'missing from'} a QEMU ${qemu} stream`);

  // devices: values by the vmdescription's layout where that reproduces the payload exactly
  const index = vmdescText !== undefined ? new DeviceIndex(parseVmDescription(vmdescText)) : undefined;
  model.devices = devices.map(({ node, ...d }) => {
    const entry = index?.take(d.idstr, d.instanceId);
    if (entry) {
      const vmsd: Partial<typeof entry> = { ...entry };
      delete vmsd.name;
      delete vmsd.instance_id;
      d.vmsd = vmsd;
    }
    if (node && d.vmsd) {
      const original = encodeToBytes([node]);
      delete d.payload;
      try {
        d.state = stateFromNode(node.node);
        if (!sameBytes(encodeToBytes([deviceRecord(d)]), original))
          throw new StateShapeError('values do not reproduce the payload');
      } catch (e) {
        if (!(e instanceof StateShapeError)) throw e;
        delete d.state;
        d.payload = Buffer.from(original).toString('hex');
      }
    }
    return d;
  });
  if (vmdescText !== undefined && vmdescription(model) !== vmdescText) model.overrides = { vmdescription: vmdescText };
  return model;
}
