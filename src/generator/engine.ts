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
 * (CONTINUE when the page's block is the one of the page before in the same section, the
 * block name otherwise), zero-page detection, the MEM_SIZE total, the advise's page sizes,
 * the configuration's subsections and the vmdescription JSON.
 */
import { ConfigurationSubsections } from '../../grammar/configuration.js';
import { RamFlag, RAM_SECTION_IDSTR } from '../../grammar/ram.js';
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
import { layoutSize } from '../layout/write.js';
import type { LayoutValue } from '../layout/types.js';
import type { ConfigurationSubsectionValue, MainRecord } from '../model/records.js';
import type { VmsdDescription } from '../vmstate/vmdesc.js';
import { VALIDATED_CAPABILITIES } from '../../grammar/configuration.js';
import type { DeviceModel, MachineModel, PageRun, RamRound } from './model.js';
import type { ModelFiles } from './side-files.js';
import { nodeFromState } from './state-values.js';

const r0 = { offset: 0, length: 0 };

export class ModelError extends Error {}

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

function command(cmd: number, fields: LayoutValue): MainRecord {
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
class PageContent {
  private history = new Map<string, number>();
  constructor(
    private readonly m: MachineModel,
    private readonly files: ModelFiles,
  ) {
    (m.ram.history ?? []).forEach(([b, p, round], i) => this.history.set(`${b}:${p}:${round}`, i));
  }

  page(block: number, page: number, round: number): Uint8Array {
    const size = this.m.machine.targetPageSize;
    const h = this.history.get(`${block}:${page}:${round}`);
    if (h !== undefined) {
      if (!this.m.ram.historyFile) throw new ModelError('ram.history without ram.historyFile');
      return this.files.read(this.m.ram.historyFile, h * size, size);
    }
    const b = this.m.ram.blocks[block];
    if (!b) throw new ModelError(`page run names block ${block}, the model has ${this.m.ram.blocks.length}`);
    return b.image ? this.files.read(b.image, page * size, size) : new Uint8Array(size);
  }
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x) return false;
  return true;
}

/** The records of a model's main channel. Page data are fresh arrays; nothing is kept between records. */
export function* generateMain(m: MachineModel, files: ModelFiles): Generator<MainRecord> {
  const v = m.qemu;
  const s = m.settings;
  const caps = new Set(s.capabilities);
  const pageSize = m.machine.targetPageSize;
  const multifd = caps.has('multifd');
  const content = new PageContent(m, files);
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
        if (!run.encoded || !ram.encodedFile)
          throw new ModelError(`an ${run.as} page needs ram.encodedFile and encoded`);
        const data = files.read(ram.encodedFile, run.encoded[0], run.encoded[1]);
        if (run.as === 'xbzrle')
          yield {
            kind: 'ram',
            op: 'xbzrle',
            ...base,
            flags: RamFlag.RAM_SAVE_FLAG_XBZRLE | cont,
            encoding: run.xbzrleEncoding ?? 1,
            data,
          };
        else
          yield { kind: 'ram', op: 'compress_page', ...base, flags: RamFlag.RAM_SAVE_FLAG_COMPRESS_PAGE | cont, data };
        continue;
      }
      const data = content.page(run.block, page, roundIndex);
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

  // setup: ram_save_setup
  yield section('START', ram.sectionId, RAM_SECTION_IDSTR, ram.instanceId, ram.version);
  const total = ram.blocks.reduce((n, b) => n + b.usedLength, 0);
  yield { kind: 'ram', op: 'mem_size', ...r0, flags: RamFlag.RAM_SAVE_FLAG_MEM_SIZE, addr: total };
  for (const b of ram.blocks) {
    const rec: MainRecord = { kind: 'ram_block', ...r0, idstr: b.idstr, usedLength: b.usedLength };
    if (b.pageSize !== undefined) rec.pageSize = b.pageSize;
    if (b.mrAddr !== undefined) rec.mrAddr = b.mrAddr;
    yield rec;
  }
  // multifd: a flush at setup (savevm-main-channel.md: RAM_SAVE_FLAG_MULTIFD_FLUSH, 8.0+)
  if (multifd && versionAtLeast(v, 9, 0)) yield flush;
  yield eos;
  yield* footer(ram.sectionId);

  for (let i = 0; i < ram.iterations.length; i++) {
    const round = ram.iterations[i] as RamRound;
    yield section('PART', ram.sectionId, RAM_SECTION_IDSTR, ram.instanceId, ram.version);
    yield* pages(round, i);
    if (round.multifdFlush) yield flush;
    yield eos;
    yield* footer(ram.sectionId);
  }
  if (versionAtLeast(v, 10, 0)) yield command(MIG_CMD_SWITCHOVER_START, {});
  yield section('END', ram.sectionId, RAM_SECTION_IDSTR, ram.instanceId, ram.version);
  yield* pages(ram.complete, -1);
  if (ram.complete.multifdFlush) yield flush;
  yield eos;
  yield* footer(ram.sectionId);

  for (const d of m.devices) {
    yield section('FULL', d.sectionId, d.idstr, d.instanceId, d.version);
    yield deviceRecord(d);
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
