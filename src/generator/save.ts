/**
 * Reference save engine: emits the records QEMU's source writes for a Scenario, in
 * qemu_savevm_state order (header, configuration, [OPEN_RETURN_PATH, PING 1], setup START
 * sections, precopy PARTs, [SWITCHOVER_START], END sections, FULL sections, EOF,
 * vmdescription), with VFIO devices following hw/vfio/migration.c (spec
 * vfio-and-multifd.md §4) and their multifd device state (§8.7, §9).
 */
import { Prng } from '../model/prng.js';
import { MultifdFlag, MULTIFD_MAGIC, MULTIFD_PACKET_BYTES_OF_PAGES, MULTIFD_VERSION } from '../../grammar/multifd.js';
import { RamFlag } from '../../grammar/ram.js';
import {
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PING,
  MIG_CMD_SWITCHOVER_START,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
} from '../../grammar/savevm.js';
import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSIX,
  PCI_DEVICE_VERSION_ID,
  PCI_STATUS_CAP_LIST,
  VFIO_DEVICE_STATE_CONFIG_STATE,
  VFIO_DISPLAY_SUBSECTION,
  VfioTag,
  type VfioTagName,
} from '../../grammar/vfio.js';
import type { MainRecord, VfioPciConfigRecord } from '../model/records.js';
import { encodeToBytes } from '../codec/open.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import type { Scenario, VfioDeviceScenario } from './scenario.js';
import { versionAtLeast } from '../../grammar/version.js';
import { command, qemuJson } from './engine.js';

export interface SavedStream {
  main: MainRecord[];
  multifd: MultifdRecord[][];
}

const r0 = { offset: 0, length: 0 };

/** Deterministic bytes (xorshift32), so generated fixtures are reproducible. */
function deviceBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const rng = new Prng(seed, 0x9e3779b9);
  for (let i = 0; i < n; i++) out[i] = rng.next() & 0xff;
  return out;
}

function tag(t: VfioTagName): MainRecord {
  return { kind: 'vfio_tag', ...r0, tag: t, value: VfioTag[t] };
}

/** A VFIOPCIDevice state: config space with an MSI-X (and optionally Express) capability. */
export function pciConfigRecord(c: VfioDeviceScenario['config'] = {}): VfioPciConfigRecord {
  const size = c.express ? 4096 : 256;
  const config = new Uint8Array(size);
  const dv = new DataView(config.buffer);
  dv.setUint16(0, 0x15b3, true); // vendor (little-endian config space)
  dv.setUint16(2, 0x101e, true); // device
  dv.setUint16(4, 0x0006, true); // command: memory + bus master
  dv.setUint16(6, PCI_STATUS_CAP_LIST, true);
  config[0x34] = 0x40;
  const vectors = c.msixVectors ?? 4;
  let at = 0x40;
  if (c.express) {
    config[at] = PCI_CAP_ID_EXP;
    config[at + 1] = vectors ? 0x70 : 0;
    config[at + 2] = 0x02;
    at = 0x70;
  }
  if (vectors) {
    config[at] = PCI_CAP_ID_MSIX;
    config[at + 1] = 0;
    dv.setUint16(at + 2, vectors - 1, true);
    dv.setUint32(at + 4, 0x0000_0000, true); // table in BAR0 at 0
    dv.setUint32(at + 8, 0x0000_0800, true); // PBA in BAR0 at 0x800
  }
  const rec: VfioPciConfigRecord = {
    kind: 'vfio_pci_config',
    ...r0,
    pciVersion: PCI_DEVICE_VERSION_ID,
    config,
    irqState: [0, 0, 0, 0],
  };
  if (vectors) {
    rec.msixTable = new Uint8Array(vectors * 16);
    for (let v = 0; v < vectors; v++) rec.msixTable[v * 16 + 12] = 1; // vector control: masked
    rec.msixPba = new Uint8Array(Math.ceil(vectors / 8));
  }
  if (c.display) rec.display = { name: VFIO_DISPLAY_SUBSECTION, version: 1, ramfb: new Uint8Array(28) };
  return rec;
}

export function save(s: Scenario): SavedStream {
  const caps = new Set(s.capabilities ?? []);
  const v = s.qemu;
  const machine = s.machine ?? `pc-q35-${v}`;
  const multifdOn = caps.has('multifd');
  const switchoverAck = caps.has('switchover-ack');
  const sendSwitchoverStart = versionAtLeast(v, 10, 0);
  const flushes = multifdOn && versionAtLeast(v, 8, 1);
  const seed = s.seed ?? 1;
  const main: MainRecord[] = [];
  const push = (r: MainRecord): void => void main.push(r);
  const ramBytes = s.ramBytes ?? 64 * 1024;
  const devices = (s.vfio ?? []).map((d, i) => ({
    ...d,
    id: 2 + i,
    idstr: `${d.path}/vfio`,
    sentInit: false,
    remainingInit: d.initialBytes ?? 0,
  }));
  const mfdChannels = multifdOn ? (s.multifdChannels ?? 2) : 0;
  const multifd: MultifdRecord[][] = [];
  let packetNum = 0n;
  for (let c = 0; c < mfdChannels; c++) {
    multifd.push([
      {
        kind: 'multifd_init',
        ...r0,
        fields: {
          magic: MULTIFD_MAGIC,
          version: MULTIFD_VERSION,
          uuid: new Uint8Array(16),
          id: c,
          unused: new Uint8Array(39),
        },
      },
    ]);
  }
  const pageSize = 4096;
  const syncRound = (): void => {
    // one standalone SYNC packet per channel (9.0+), then MULTIFD_FLUSH on the main channel
    for (const ch of multifd) {
      ch.push({
        kind: 'multifd_packet',
        ...r0,
        header: { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, flags: MultifdFlag.MULTIFD_FLAG_SYNC },
        fields: {
          pagesAlloc: 0,
          normalPages: 0,
          nextPacketSize: 0,
          packetNum: packetNum++,
          zeroPages: 0,
          unused: new Uint8Array(28),
          ramblock: new Uint8Array(256),
        },
        offsets: new Uint8Array((MULTIFD_PACKET_BYTES_OF_PAGES / pageSize) * 8),
      });
    }
    push({ kind: 'ram', op: 'multifd_flush', ...r0, flags: RamFlag.RAM_SAVE_FLAG_MULTIFD_FLUSH, addr: 0 });
  };
  const section = (kind: 'START' | 'PART' | 'END' | 'FULL', id: number, idstr: string, version: number): void =>
    push({ kind: 'section', ...r0, section: kind, sectionId: id, idstr, instanceId: 0, versionId: version });
  const footer = (id: number): void => push({ kind: 'section_footer', ...r0, sectionId: id });
  const data = (n: number, salt: number): void => {
    const t = tag('DEV_DATA_STATE');
    if (t.kind === 'vfio_tag') t.size = n;
    push(t);
    if (n) push({ kind: 'vfio_data', ...r0, data: deviceBytes(n, seed * 7919 + salt) });
  };

  push({ kind: 'file_header', ...r0, magic: QEMU_VM_FILE_MAGIC, version: QEMU_VM_FILE_VERSION });
  push({ kind: 'configuration', ...r0, machineType: machine, subsections: [] });
  if (caps.has('return-path') || caps.has('postcopy-ram')) {
    push(command(MIG_CMD_OPEN_RETURN_PATH, {}));
    push(command(MIG_CMD_PING, { value: 1 }));
  }
  // setup
  section('START', 1, 'ram', 4);
  push({ kind: 'ram', op: 'mem_size', ...r0, flags: RamFlag.RAM_SAVE_FLAG_MEM_SIZE, addr: ramBytes });
  push({ kind: 'ram_block', ...r0, idstr: 'pc.ram', usedLength: ramBytes });
  if (flushes) syncRound();
  push({ kind: 'ram', op: 'eos', ...r0, flags: RamFlag.RAM_SAVE_FLAG_EOS, addr: 0 });
  footer(1);
  for (const d of devices) {
    section('START', d.id, d.idstr, 1);
    push(tag('DEV_SETUP_STATE'));
    push(tag('END_OF_STATE'));
    footer(d.id);
  }
  // precopy iterations
  const iterations = s.iterations ?? 2;
  for (let it = 0; it < iterations; it++) {
    section('PART', 1, 'ram', 4);
    for (let p = 0; p < ramBytes; p += pageSize) {
      const cont = p ? RamFlag.RAM_SAVE_FLAG_CONTINUE : 0;
      if (it === 0)
        push({
          kind: 'ram',
          op: 'zero',
          ...r0,
          flags: RamFlag.RAM_SAVE_FLAG_ZERO | cont,
          addr: p,
          block: 'pc.ram',
          fill: 0,
        });
    }
    if (flushes && it === 0) syncRound();
    push({ kind: 'ram', op: 'eos', ...r0, flags: RamFlag.RAM_SAVE_FLAG_EOS, addr: 0 });
    footer(1);
    for (const d of devices) {
      const v1 = d.protocol === 'v1';
      const chunk = d.precopy?.[it];
      if (!v1 && chunk === undefined) continue; // v2 without PRE_COPY: no PART
      section('PART', d.id, d.idstr, 1);
      if (v1) {
        data(chunk ?? 0, d.id * 1000 + it);
        push(tag('END_OF_STATE'));
      } else {
        if (chunk) data(chunk, d.id * 1000 + it);
        d.remainingInit = Math.max(0, d.remainingInit - (chunk ?? 0));
        if (switchoverAck && d.remainingInit === 0 && !d.sentInit) {
          push(tag('DEV_INIT_DATA_SENT'));
          d.sentInit = true;
        } else push(tag('END_OF_STATE'));
      }
      footer(d.id);
    }
  }
  if (sendSwitchoverStart) push(command(MIG_CMD_SWITCHOVER_START, {}));
  // completion: END sections in registration order
  section('END', 1, 'ram', 4);
  const page = deviceBytes(pageSize, seed);
  // rs->last_sent_block is still pc.ram from the first iteration: CONTINUE, no block name (as QEMU's recordings show)
  push({
    kind: 'ram',
    op: 'page',
    ...r0,
    flags: RamFlag.RAM_SAVE_FLAG_PAGE | RamFlag.RAM_SAVE_FLAG_CONTINUE,
    addr: 0,
    block: 'pc.ram',
    data: page,
  });
  if (flushes) syncRound();
  push({ kind: 'ram', op: 'eos', ...r0, flags: RamFlag.RAM_SAVE_FLAG_EOS, addr: 0 });
  footer(1);
  let channel = 0;
  for (const d of devices) {
    section('END', d.id, d.idstr, 1);
    if (d.multifd) {
      push(tag('END_OF_STATE'));
      // the device's save thread: data buffers, then the config buffer, round-robin over channels
      const buffers: { flags: number; data: Uint8Array }[] = (d.stopCopy ?? []).map((n, i) => ({
        flags: 0,
        data: deviceBytes(n, d.id * 1000 + 500 + i),
      }));
      buffers.push({ flags: VFIO_DEVICE_STATE_CONFIG_STATE, data: configBlob(d) });
      buffers.forEach((b, idx) => {
        const payload = new Uint8Array(12 + b.data.length);
        const dv = new DataView(payload.buffer);
        dv.setUint32(0, 0);
        dv.setUint32(4, idx);
        dv.setUint32(8, b.flags);
        payload.set(b.data, 12);
        const idstr = new Uint8Array(256);
        idstr.set(Buffer.from(d.idstr, 'latin1'));
        const ch = multifd[channel++ % multifd.length]!;
        ch.push({
          kind: 'multifd_device_state',
          ...r0,
          header: { magic: MULTIFD_MAGIC, version: MULTIFD_VERSION, flags: MultifdFlag.MULTIFD_FLAG_DEVICE_STATE },
          fields: { idstr, instanceId: 0, nextPacketSize: payload.length },
        });
        ch.push({ kind: 'multifd_payload', ...r0, data: payload });
      });
    } else {
      (d.stopCopy ?? []).forEach((n, i) => data(n, d.id * 1000 + 500 + i));
      if (d.protocol === 'v1') data(0, 0); // v1 writes the final empty chunk
      push(tag('END_OF_STATE'));
    }
    footer(d.id);
  }
  // non-iterable device state (FULL)
  const vmdescDevices: object[] = [];
  for (const d of devices) {
    section('FULL', d.id, d.idstr, 1); // one SaveStateEntry: the FULL section reuses the START's id
    const start = main.length;
    if (d.multifd) push(tag(d.loadConfigAfterIter ? 'DEV_CONFIG_LOAD_READY' : 'END_OF_STATE'));
    else {
      push(tag('DEV_CONFIG_STATE'));
      push(pciConfigRecord(d.config));
      push(tag('END_OF_STATE'));
    }
    const size = encodeToBytes(main.slice(start)).length;
    footer(d.id);
    vmdescDevices.push({ name: d.idstr, instance_id: 0, size, fields: [{ name: 'data', size, type: 'buffer' }] });
  }
  push({ kind: 'eof', offset: 0, length: 1 });
  const desc: Record<string, unknown> = {};
  if (versionAtLeast(v, 8, 2)) {
    desc.configuration = {
      vmsd_name: 'configuration',
      version: 1,
      fields: [
        { name: 'len', type: 'uint32', size: 4 },
        { name: 'name', type: 'buffer', size: machine.length },
      ],
    };
  }
  desc.page_size = pageSize;
  desc.devices = vmdescDevices;
  push({ kind: 'vmdescription', ...r0, json: qemuJson(desc) });
  return { main, multifd };
}

/** The config buffer of a multifd VFIO device: what the FULL section would have carried. */
function configBlob(d: VfioDeviceScenario): Uint8Array {
  return encodeToBytes([tag('DEV_CONFIG_STATE'), pciConfigRecord(d.config), tag('END_OF_STATE')]);
}
