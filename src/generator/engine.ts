/**
 * The save engine: a MachineModel in, the main channel's records out, in the order QEMU's
 * qemu_savevm_state writes them (spec savevm-main-channel.md; migration/savevm.c,
 * migration/ram.c):
 *
 *   file header, configuration (send-configuration), OPEN_RETURN_PATH + PING 1 (return
 *   path, which postcopy-ram opens too), POSTCOPY_ADVISE (postcopy-ram), the RAM setup
 *   (START: MEM_SIZE and the RAMBlock list), one PART per precopy iteration,
 *   SWITCHOVER_START (10.0+), the RAM completion (END), the devices' FULL sections, EOF,
 *   the vmdescription (unless suppressed), each section closed by its footer
 *   (send-section-footer).
 *
 * Everything framing-related is derived here: section headers and footers, RAM flags
 * (CONTINUE when the page's block is the one of the page sent before it, in any earlier
 * section too: rs->last_sent_block; the block name otherwise), zero-page detection, the MEM_SIZE total, the advise's page sizes,
 * the configuration's subsections and the vmdescription JSON.
 */
import { isZero } from '../io/bytes.js';
import { ConfigurationSubsections } from '../../grammar/configuration.js';
import {
  ENCODING_FLAG_XBZRLE,
  MAPPED_RAM_FILE_OFFSET_ALIGNMENT,
  MAPPED_RAM_HDR_VERSION,
  MappedRamHeader,
  RamBlockEntry,
  RamFlag,
  RAM_SECTION_IDSTR,
} from '../../grammar/ram.js';
import { deflate } from 'pako';
import { encodeXbzrle } from '../ram/xbzrle.js';
import {
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PING,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_SWITCHOVER_START,
  migCommandByValue,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  type SectionKind,
} from '../../grammar/savevm.js';
import { versionAtLeast } from '../../grammar/version.js';
import { fixedSize } from '../../grammar/layout.js';
import { layoutSize } from '../layout/write.js';
import { ChannelEncoder } from '../codec/channels.js';
import { StreamWriter, type ByteSink } from '../io/sink.js';
import type { LayoutValue } from '../layout/types.js';
import type { ConfigurationSubsectionValue, MainRecord } from '../model/records.js';
import type { VmsdDescription } from '../vmstate/vmdesc.js';
import { VALIDATED_CAPABILITIES } from '../../grammar/configuration.js';
import type { DeviceModel, MachineModel, PageRun, RamBlockModel, RamRound } from './model.js';
import type { IterableDeviceModel, VfioItem } from './vfio-model.js';
import type { ModelFiles } from './side-files.js';
import { ModelError } from './engine-errors.js';
import { vfioRecords } from './vfio-model.js';
import { nodeFromState } from './state-values.js';

const r0 = { offset: 0, length: 0 };
const MAPPED_RAM_HEADER_BYTES = fixedSize(MappedRamHeader) ?? 0;

export { ModelError };

/** Compact JSON as QEMU's JSON writer prints it (", " and ": " between items). */
export function qemuJson(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(qemuJson).join(', ') + ']';
  if (v && typeof v === 'object')
    return (
      '{' +
      Object.entries(v)
        .map(([k, x]) => `${JSON.stringify(k)}: ${qemuJson(x)}`)
        .join(', ') +
      '}'
    );
  return JSON.stringify(v);
}

export function command(cmd: number, fields: LayoutValue): MainRecord {
  const def = migCommandByValue.get(cmd);
  if (!def) throw new ModelError(`no MIG_CMD ${cmd} in the grammar`);
  return { kind: 'command', ...r0, cmd, name: def.name, len: layoutSize(def.payload, fields), fields };
}

/** The configuration subsections QEMU sends for these settings (savevm.c vmstate_configuration's .needed functions). */
export function configurationSubsections(m: MachineModel): ConfigurationSubsectionValue[] {
  const out: ConfigurationSubsectionValue[] = [];
  const validated = m.settings.capabilities.filter((c) => (VALIDATED_CAPABILITIES as readonly string[]).includes(c));
  for (const s of ConfigurationSubsections) {
    if (s.name === 'configuration/capabilities' && validated.length)
      out.push({
        name: s.name,
        version: 1,
        fields: { capsCount: validated.length, capabilities: validated.map((name) => ({ name })) },
      });
    if (s.name === 'configuration/uuid' && m.settings.validateUuid) {
      if (!m.machine.uuid || !/^[0-9a-f]{32}$/i.test(m.machine.uuid))
        throw new ModelError('settings.validateUuid needs machine.uuid (32 hex digits)');
      out.push({ name: s.name, version: 1, fields: { uuid: Uint8Array.from(Buffer.from(m.machine.uuid, 'hex')) } });
    }
  }
  return out;
}

/** The configuration's own entry in the vmdescription (8.2+): its fields and the subsections sent. */
function configurationVmsd(m: MachineModel, subs: ConfigurationSubsectionValue[]): VmsdDescription {
  const d: VmsdDescription = {
    vmsd_name: 'configuration',
    version: 1,
    fields: [
      { name: 'len', type: 'uint32', size: 4 },
      { name: 'name', type: 'buffer', size: Buffer.byteLength(m.machine.type, 'latin1') },
    ],
  };
  if (subs.length) {
    d.subsections = subs.map((s) => {
      // the VMSTATE_* fields of each subsection (migration/savevm.c), as QEMU's vmdesc names them
      if (s.name === 'configuration/uuid')
        return {
          vmsd_name: s.name,
          version: 1,
          fields: [{ name: 'uuid.data', array_len: 16, type: 'uint8', size: 1 }],
        };
      if (s.name === 'configuration/target-page-bits')
        return { vmsd_name: s.name, version: 1, fields: [{ name: 'target_page_bits', type: 'uint32', size: 4 }] };
      const caps = m.settings.capabilities.filter((c) => (VALIDATED_CAPABILITIES as readonly string[]).includes(c));
      if (caps.length !== 1)
        throw new ModelError('the vmdescription of more than one validated capability is not derived yet');
      return {
        vmsd_name: s.name,
        version: 1,
        fields: [
          { name: 'caps_count', type: 'uint32', size: 4 },
          { name: 'capabilities', type: 'capability', size: 1 + (caps[0] ?? '').length },
        ],
      };
    });
  }
  return d;
}

/** Where a send's content comes from: the history file for superseded sends, the block image otherwise. */
export class PageContent {
  private history = new Map<string, number>();
  constructor(
    private readonly m: MachineModel,
    private readonly files: ModelFiles,
  ) {
    (m.ram.history ?? []).forEach(([b, p, round], i) => this.history.set(`${b}:${p}:${round}`, i));
  }

  page(block: number, page: number, round: number): Uint8Array {
    const size = this.m.machine.targetPageSize;
    // most pages are sent once: no key is built when nothing was superseded
    const h = this.history.size ? this.history.get(`${block}:${page}:${round}`) : undefined;
    if (h !== undefined) {
      if (!this.m.ram.historyFile) throw new ModelError('ram.history without ram.historyFile');
      return this.files.read(this.m.ram.historyFile, h * size, size);
    }
    const b = this.m.ram.blocks[block];
    if (!b) throw new ModelError(`page run names block ${block}, the model has ${this.m.ram.blocks.length}`);
    return b.image ? this.files.read(b.image, page * size, size) : new Uint8Array(size);
  }
}

/** The round each page was last sent in: what an XBZRLE send is encoded against. Kept only when the model has such sends. */
class SendLog {
  private last: Map<string, number> | undefined;
  constructor(m: MachineModel) {
    if ([...m.ram.iterations, m.ram.complete].some((r) => r.runs.some((x) => x.as === 'xbzrle' && !x.encoded)))
      this.last = new Map();
  }
  /** records a send, returning the round of the one before it */
  note(block: number, page: number, round: number): number | undefined {
    if (!this.last) return undefined;
    const k = `${block}:${page}`;
    const before = this.last.get(k);
    this.last.set(k, round);
    return before;
  }
}

/** compress-level: 1 unless the model says otherwise (QEMU's default) */
export function compressLevel(level: number | undefined): 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 {
  const l = level ?? 1;
  if (!Number.isInteger(l) || l < 0 || l > 9) throw new ModelError(`compress-level ${l}: 0 to 9`);
  return l as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/**
 * The records of a model's main channel. Page data are fresh arrays; nothing is kept between
 * records. `position` tells where the next record will start (mapped-ram's header names file
 * offsets): the consumer writes each record before it pulls the next.
 */
export function* generateMain(m: MachineModel, files: ModelFiles, position?: () => number): Generator<MainRecord> {
  const v = m.qemu;
  const s = m.settings;
  const caps = new Set(s.capabilities);
  const pageSize = m.machine.targetPageSize;
  const multifd = caps.has('multifd');
  const content = new PageContent(m, files);
  const sends = new SendLog(m);
  const ram = m.ram;

  const section = (kind: SectionKind, id: number, idstr: string, instanceId: number, version: number): MainRecord => ({
    kind: 'section',
    ...r0,
    section: kind,
    sectionId: id,
    idstr,
    instanceId,
    versionId: version,
  });
  function* footer(id: number): Generator<MainRecord> {
    if (s.sendSectionFooter) yield { kind: 'section_footer', ...r0, sectionId: id };
  }
  const eos: MainRecord = { kind: 'ram', op: 'eos', ...r0, flags: RamFlag.RAM_SAVE_FLAG_EOS, addr: 0 };
  const flush: MainRecord = {
    kind: 'ram',
    op: 'multifd_flush',
    ...r0,
    flags: RamFlag.RAM_SAVE_FLAG_MULTIFD_FLUSH,
    addr: 0,
  };

  // rs->last_sent_block: CONTINUE says "same block as the page sent before", across sections
  let lastBlock = -1;
  function* pages(round: RamRound, roundIndex: number): Generator<MainRecord> {
    for (const run of round.runs) {
      yield* runRecords(run, roundIndex, lastBlock === run.block);
      lastBlock = run.block;
    }
  }
  /** The wire bytes of an XBZRLE or compressed send: carried by the model, or encoded here. */
  function encodedPage(run: PageRun, page: number, roundIndex: number, idstr: string): Uint8Array {
    const before = sends.note(run.block, page, roundIndex);
    if (run.encoded) {
      if (!ram.encodedFile) throw new ModelError(`an ${run.as} page with encoded bytes needs ram.encodedFile`);
      return files.read(ram.encodedFile, run.encoded[0], run.encoded[1]);
    }
    const data = content.page(run.block, page, roundIndex);
    // qemu_compress_data: one zlib stream per page at compress-level; pako deflates as zlib does
    if (run.as === 'compress') return deflate(data, { level: compressLevel(s.compressLevel) });
    // the delta against the page as it was last sent (the XBZRLE cache), as migration/xbzrle.c encodes it
    if (before === undefined)
      throw new ModelError(`an XBZRLE send of page ${page} of ${idstr} that was never sent before`);
    const delta = encodeXbzrle(content.page(run.block, page, before), data, pageSize);
    if (!delta)
      throw new ModelError(`page ${page} of ${idstr}: unchanged or too changed for XBZRLE, QEMU would not send it so`);
    return delta;
  }
  function* runRecords(run: PageRun, roundIndex: number, continues: boolean): Generator<MainRecord> {
    const block = ram.blocks[run.block];
    if (!block) throw new ModelError(`page run names block ${run.block}, the model has ${ram.blocks.length}`);
    for (let i = 0; i < run.count; i++) {
      const page = run.first + i;
      const addr = page * pageSize;
      if (addr >= block.usedLength) throw new ModelError(`page ${page} is past the end of block ${block.idstr}`);
      const cont = continues || i > 0 ? RamFlag.RAM_SAVE_FLAG_CONTINUE : 0;
      const base = { ...r0, addr, block: block.idstr };
      if (run.as === 'xbzrle' || run.as === 'compress') {
        const wire = encodedPage(run, page, roundIndex, block.idstr);
        if (run.as === 'xbzrle') {
          const encoding = run.xbzrleEncoding ?? ENCODING_FLAG_XBZRLE;
          yield {
            kind: 'ram',
            op: 'xbzrle',
            ...base,
            flags: RamFlag.RAM_SAVE_FLAG_XBZRLE | cont,
            encoding,
            data: wire,
          };
        } else {
          const flags = RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE | cont;
          yield { kind: 'ram', op: 'compress_page', ...base, flags, data: wire };
        }
        continue;
      }
      const data = content.page(run.block, page, roundIndex);
      sends.note(run.block, page, roundIndex);
      const asZero = run.as === 'zero' || (run.as === undefined && s.zeroPageDetection !== 'none' && isZero(data));
      if (asZero)
        yield { kind: 'ram', op: 'zero', ...base, flags: RamFlag.RAM_SAVE_FLAG_ZERO | cont, fill: run.fill ?? 0 };
      else yield { kind: 'ram', op: 'page', ...base, flags: RamFlag.RAM_SAVE_FLAG_PAGE | cont, data };
    }
  }

  yield { kind: 'file_header', ...r0, magic: QEMU_VM_FILE_MAGIC, version: QEMU_VM_FILE_VERSION };
  const subs = configurationSubsections(m);
  if (s.sendConfiguration) {
    yield { kind: 'configuration', ...r0, machineType: m.machine.type, subsections: subs };
  }
  if (caps.has('return-path') || caps.has('postcopy-ram')) {
    yield command(MIG_CMD_OPEN_RETURN_PATH, {});
    yield command(MIG_CMD_PING, { value: 1 });
  }
  if (caps.has('postcopy-ram')) {
    let summary = 0n;
    for (const b of ram.blocks) summary |= BigInt(b.pageSize ?? pageSize);
    yield command(MIG_CMD_POSTCOPY_ADVISE, { ramPagesizeSummary: summary, targetPageSize: BigInt(pageSize) });
  }

  /**
   * mapped-ram (migration/ram.c mapped_ram_setup_ramblock): the header names the bitmap right
   * after it and the page slots at the next 1 MiB boundary; a page's slot holds its final
   * content and its bitmap bit is set when it was written (zero pages are left as holes).
   */
  let areaEnd = 0;
  function* mappedRamBlock(rec: Extract<MainRecord, { kind: 'ram_block' }>, index: number): Generator<MainRecord> {
    if (!position) throw new ModelError('mapped-ram needs the file position of each record');
    const b = ram.blocks[index] as RamBlockModel;
    const pages = Math.ceil(b.usedLength / pageSize);
    const bitmapSize = Math.ceil(pages / 64) * 8;
    // the record starts after the previous block's page area (its absent tail is a hole)
    const bitmapOffset =
      Math.max(position(), areaEnd) +
      layoutSize(RamBlockEntry, { idstr: b.idstr, usedLength: b.usedLength }) +
      MAPPED_RAM_HEADER_BYTES;
    const pagesOffset = alignUp(bitmapOffset + bitmapSize, MAPPED_RAM_FILE_OFFSET_ALIGNMENT);
    rec.mappedRam = { version: MAPPED_RAM_HDR_VERSION, pageSize, bitmapOffset, pagesOffset };
    areaEnd = pagesOffset + b.usedLength;
    yield rec;
    const bitmap = new Uint8Array(bitmapSize);
    const present: number[] = [];
    for (let p = 0; p < pages; p++) {
      if (isZero(content.page(index, p, -1))) continue;
      bitmap[p >>> 3] = (bitmap[p >>> 3] ?? 0) | (1 << (p & 7));
      present.push(p);
    }
    yield { kind: 'mapped_ram_bitmap', ...r0, block: b.idstr, data: bitmap };
    for (const p of present) {
      const data = content.page(index, p, -1).subarray(0, Math.min(pageSize, b.usedLength - p * pageSize));
      yield { kind: 'mapped_ram_page', ...r0, block: b.idstr, index: p, present: true, data };
    }
  }

  // setup: ram_save_setup
  yield section('START', ram.sectionId, RAM_SECTION_IDSTR, ram.instanceId, ram.version);
  const total = ram.blocks.reduce((n, b) => n + b.usedLength, 0);
  yield { kind: 'ram', op: 'mem_size', ...r0, flags: RamFlag.RAM_SAVE_FLAG_MEM_SIZE, addr: total };
  for (const [i, b] of ram.blocks.entries()) {
    const rec: MainRecord = { kind: 'ram_block', ...r0, idstr: b.idstr, usedLength: b.usedLength };
    if (b.pageSize !== undefined) rec.pageSize = b.pageSize;
    if (b.mrAddr !== undefined) rec.mrAddr = b.mrAddr;
    if (caps.has('mapped-ram')) yield* mappedRamBlock(rec, i);
    else yield rec;
  }
  // multifd: a flush at setup (savevm-main-channel.md: RAM_SAVE_FLAG_MULTIFD_FLUSH, 8.0+)
  if (multifd && versionAtLeast(v, 9, 0)) yield flush;
  yield eos;
  yield* footer(ram.sectionId);
  const iterables = m.iterables ?? [];
  /** an iterable device's section of one phase (VFIO: its items) */
  function* iterableSection(kind: SectionKind, d: IterableDeviceModel, items: VfioItem[] | null | undefined) {
    if (!items) return;
    yield section(kind, d.sectionId, d.idstr, d.instanceId, d.version);
    yield* vfioRecords(items, files, m.deviceDataFile);
    yield* footer(d.sectionId);
  }
  for (const d of iterables) yield* iterableSection('START', d, d.setup);

  for (let i = 0; i < ram.iterations.length; i++) {
    const round = ram.iterations[i] as RamRound;
    yield section('PART', ram.sectionId, RAM_SECTION_IDSTR, ram.instanceId, ram.version);
    yield* pages(round, i);
    if (round.multifdFlush) yield flush;
    yield eos;
    yield* footer(ram.sectionId);
    for (const d of iterables) yield* iterableSection('PART', d, d.iterations[i]);
  }
  if (versionAtLeast(v, 10, 0)) yield command(MIG_CMD_SWITCHOVER_START, {});
  yield section('END', ram.sectionId, RAM_SECTION_IDSTR, ram.instanceId, ram.version);
  yield* pages(ram.complete, -1);
  if (ram.complete.multifdFlush) yield flush;
  yield eos;
  yield* footer(ram.sectionId);
  for (const d of iterables) yield* iterableSection('END', d, d.complete);

  for (const d of m.devices) {
    yield section('FULL', d.sectionId, d.idstr, d.instanceId, d.version);
    if (d.vfio) yield* vfioRecords(d.vfio, files, m.deviceDataFile);
    else yield deviceRecord(d);
    yield* footer(d.sectionId);
  }
  yield { kind: 'eof', offset: 0, length: 1 };
  if (s.vmdescription)
    yield { kind: 'vmdescription', ...r0, json: m.overrides?.vmdescription ?? vmdescription(m, subs) };
}

/** A device's FULL payload: its state laid out by its vmsd, or its bytes. */
export function deviceRecord(d: DeviceModel): MainRecord {
  if (d.payload !== undefined)
    return { kind: 'raw', ...r0, reason: 'device payload', data: Uint8Array.from(Buffer.from(d.payload, 'hex')) };
  if (!d.vmsd || !d.state) throw new ModelError(`device ${d.idstr}: neither payload nor vmsd with state`);
  return {
    kind: 'vmstate',
    ...r0,
    idstr: d.idstr,
    instanceId: d.instanceId,
    node: nodeFromState(d.vmsd, d.state, d.idstr),
  };
}

/** The vmdescription QEMU writes after EOF: the configuration (8.2+), the page size, every described device. */
export function vmdescription(
  m: MachineModel,
  subs: ConfigurationSubsectionValue[] = configurationSubsections(m),
): string {
  const desc: Record<string, unknown> = {};
  if (m.settings.sendConfiguration && versionAtLeast(m.qemu, 8, 2)) desc.configuration = configurationVmsd(m, subs);
  desc.page_size = m.machine.targetPageSize;
  desc.devices = m.devices.filter((d) => d.vmsd).map((d) => ({ name: d.idstr, instance_id: d.instanceId, ...d.vmsd }));
  return qemuJson(desc);
}

/** Generate a model's main channel into a sink (the encoder tells the engine where each record lands). */
export function encodeModel(m: MachineModel, files: ModelFiles, sink: ByteSink): number {
  const w = new StreamWriter(sink);
  const enc = new ChannelEncoder(w);
  for (const rec of generateMain(m, files, () => w.position)) enc.write(rec);
  enc.finish();
  return w.position;
}
