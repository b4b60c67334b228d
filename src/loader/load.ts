/**
 * Reference loader: checks a decoded stream against the rules QEMU's destination applies
 * (qemu_loadvm_state and the handlers' load functions), and reports each violation as a
 * Diagnostic with its offset, section path and the rule's name. Destination settings the
 * stream does not carry come in LoadOptions (capabilities, QEMU version, device properties).
 */
import { VALIDATED_CAPABILITIES, X86_MACHINE_TYPE, X86_TARGET_PAGE_BITS } from '../../grammar/configuration.js';
import { capabilityKnownTo } from '../../grammar/capabilities.js';
import { DEFAULT_TARGET_PAGE_SIZE, ENCODING_FLAG_XBZRLE } from '../../grammar/ram.js';
import { zlib } from '../io/zlib.js';
import { applyXbzrle, XbzrleError } from '../ram/xbzrle.js';
import {
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PING,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_SWITCHOVER_START,
  POSTCOPY_COMMAND_STATES,
  PostcopyIncomingState,
} from '../../grammar/savevm.js';
import { VFIO_TAG_QEMU_NAME, VFIO_TAG_SINCE, isVfioIdstr } from '../../grammar/vfio.js';
import type { MainRecord, RamRecord } from '../model/records.js';
import { RAW_MISMATCH } from '../codec/decode.js';
import { sectionHandler } from '../../grammar/handlers.js';
import { DeviceIndex, parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { hex, PATH_SEPARATOR, StreamError } from '../model/errors.js';
import { diagnosticFromStreamError, type Diagnostic } from '../model/diagnostic.js';
import { ruleSpec, type RuleId } from '../../grammar/rules.js';
import { versionAtLeast } from '../../grammar/version.js';
import {
  machineTypeAccepted,
  machineTypeVersion,
  receivedMachineType,
  uuidText,
  type DestinationProfile,
  type ProfileDevice,
} from './profile.js';
import { intField, stringField } from '../layout/fields.js';
import { FW_CFG_IDSTR } from '../../grammar/fw-cfg.js';
import { fwCfgAcpiSizes, ramBlockResizeFailure } from './device-rules.js';

export type { Diagnostic };

/** The destination the reference loader stands for: its capabilities, parameters, QEMU release and profile. */
export interface LoadOptions {
  /** destination capabilities (QEMU names) */
  capabilities?: readonly string[];
  /** destination QEMU release, "X.Y"; default: the one the machine type names (pc-i440fx-7.2: 7.2), else the newest modelled */
  qemuVersion?: string;
  /** the destination expects a CONFIGURATION record (migration property send-configuration) */
  sendConfiguration?: boolean;
  /** the destination expects section footers (migration property send-section-footer, default on) */
  sectionFooters?: boolean;
  /** vfio-pci x-migration-multifd-transfer: auto = on iff multifd is on and QEMU >= 10.0 */
  vfioMultifdTransfer?: 'auto' | 'on' | 'off';
  /** vfio-pci x-migration-load-config-after-iter (10.1+; AUTO is on only for ARM targets) */
  vfioLoadConfigAfterIter?: boolean;
  /** migration parameter multifd-compression of the destination (none, zlib, zstd, qpl, uadk, qatzip) */
  multifdCompression?: string;
  /** the destination's devices when the stream carries no vmdescription (--vmsd) */
  vmdesc?: VmDescription;
  /** problems QEMU ignores but other readers (analyze-migration.py) do not are errors too */
  strict?: boolean;
  /** migration parameter multifd-channels of the destination (QEMU's default: 2) */
  multifdChannels?: number;
  /** what the destination knows about itself: machine type, UUID, RAMBlocks, devices, their layouts */
  profile?: DestinationProfile;
}

/** The newest QEMU release the rules know (the default destination). */
export const NEWEST_QEMU = '11.1';

/** How a diagnostic names a section: `section 2 "ram" (START)`. */
function sectionPath(sectionId: number, idstr: string, kind: string): string {
  return `section ${sectionId} ${JSON.stringify(idstr)} (${kind})`;
}

/** What the main channel established that the other channels are judged against. */
export interface MainChannelFacts {
  /** RAM blocks from MEM_SIZE: name to used length */
  readonly ramBlocks: Map<string, number>;
  /** RAM_SAVE_FLAG_MULTIFD_FLUSH seen (each asks the multifd channels for a SYNC) */
  multifdFlushes: number;
  /** RAM_SAVE_FLAG_EOS seen */
  ramEos: number;
  /** MIG_CMD_SWITCHOVER_START seen */
  switchoverStart: boolean;
  /** configuration/uuid, when the configuration carries it */
  uuid: Uint8Array | undefined;
  /** MIG_CMD_PING values in order: the return path must answer each with a PONG */
  readonly pings: { value: number; offset: number }[];
}

interface VfioDeviceState {
  name: string;
  sawPart: boolean;
  loadReady: boolean;
  /** last tag that demands a specific follower */
  expect?: 'setup-eos' | 'config-eos';
}

interface InitDataSent {
  device: string;
  offset: number;
  path: string;
}

/** ReferenceLoader fields whose objects are never changed in place: a fork shares them (the rest are copied). */
const SHARED_LOADER_FIELDS: ReadonlySet<string> = new Set(['opts', 'vmdesc']);

/**
 * A deep copy of loader state: Maps, Sets, arrays and plain objects copied, an object reached
 * twice copied once (a diagnostic also kept as configurationMissing), byte arrays shared (the
 * loader never changes one it keeps; the XBZRLE scratch page's contents do not matter). A
 * field of another kind fails here, in the fuzzer's tests, rather than being shared unnoticed.
 * Done once per mutant: on pc-paused's loader state at QEMU_VM_EOF it took 32 us against
 * structuredClone's 60.
 */
function copyState(v: unknown, seen: Map<object, unknown>): unknown {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return v;
  const done = seen.get(v);
  if (done !== undefined) return done;
  if (v instanceof Map) {
    const m = new Map<unknown, unknown>();
    seen.set(v, m);
    for (const [k, x] of v) m.set(k, copyState(x, seen));
    return m;
  }
  if (v instanceof Set) {
    const m = new Set<unknown>();
    seen.set(v, m);
    for (const x of v) m.add(copyState(x, seen));
    return m;
  }
  if (Array.isArray(v)) {
    const a: unknown[] = [];
    seen.set(v, a);
    for (const x of v) a.push(copyState(x, seen));
    return a;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype) throw new Error(`copyState: cannot copy a ${v.constructor.name}`);
  const o: Record<string, unknown> = {};
  seen.set(v, o);
  for (const [k, x] of Object.entries(v)) o[k] = copyState(x, seen);
  return o;
}

/** QEMU's loading rules applied to records in stream order: feed it records with `add`, read its diagnostics. */
export class ReferenceLoader {
  readonly diagnostics: Diagnostic[] = [];
  private readonly caps: Set<string>;
  private version: string;
  private multifdTransfer: boolean;
  private pageSize = DEFAULT_TARGET_PAGE_SIZE;
  /** QEMU_VM_EOF of the stream (not of a PACKAGED blob) was read: the destination stops there */
  private sawEof = false;
  /** scratch page the XBZRLE deltas are checked against (its contents do not matter) */
  private xbzrlePage: Uint8Array | undefined;
  private sections = new Map<number, { idstr: string; instanceId: number }>();
  /** PostcopyIncomingState, moved by the postcopy commands */
  private postcopyState: number = PostcopyIncomingState.POSTCOPY_INCOMING_NONE;
  private current: { sectionId: number; name: string; kind: string } | undefined;
  private returnPathAt: number | undefined;
  private sawConfiguration = false;
  private vfio = new Map<string, VfioDeviceState>();
  private initDataSent: InitDataSent[] = [];
  /** START/FULL section headers, judged against the vmdescription at the end */
  private headers: { idstr: string; instanceId: number; versionId: number; offset: number; path: string }[] = [];
  /** no iterable section, command or vmdescription so far: what qemu_save_device_state writes */
  private onlyDeviceState = true;
  private configurationMissing: Diagnostic | undefined;
  private vmdesc: VmDescription | undefined;
  private firstRecord = true;
  /** the top-level section whose footer has not come yet */
  private openSection: { idstr: string; path: string } | undefined;
  /** QEMU stops at the first footer problem: reported once */
  private footerReported = false;
  /** what the multifd channels and the return path are checked against */
  readonly facts: MainChannelFacts = {
    ramBlocks: new Map(),
    multifdFlushes: 0,
    ramEos: 0,
    switchoverStart: false,
    uuid: undefined,
    pings: [],
  };

  constructor(private readonly opts: LoadOptions = {}) {
    this.caps = new Set(opts.capabilities ?? []);
    this.version = opts.qemuVersion ?? opts.profile?.qemuVersion ?? NEWEST_QEMU;
    this.multifdTransfer = this.decideMultifdTransfer();
    if (this.caps.has('switchover-ack') && !this.caps.has('return-path')) {
      this.report(
        'migration/switchover-ack-needs-return-path',
        0,
        'capability switchover-ack requires capability return-path',
      );
    }
  }

  /**
   * A loader in this one's state that shares nothing either of them changes: the fuzzer
   * forks the loader it kept at a checkpoint of its seed for each mutant it reads from there.
   * Every field is copied deeply (copyState), except the options and the vmdescription,
   * which are never changed in place.
   */
  fork(): ReferenceLoader {
    const copy = Object.create(ReferenceLoader.prototype) as Record<string, unknown>;
    const seen = new Map<object, unknown>();
    for (const [k, v] of Object.entries(this)) copy[k] = SHARED_LOADER_FIELDS.has(k) ? v : copyState(v, seen);
    return copy as unknown as ReferenceLoader;
  }

  private decideMultifdTransfer(): boolean {
    const mt = this.opts.vfioMultifdTransfer ?? 'auto';
    return mt === 'on' || (mt === 'auto' && this.caps.has('multifd') && versionAtLeast(this.version, 10, 0));
  }

  private path(): string {
    return this.current ? sectionPath(this.current.sectionId, this.current.name, this.current.kind) : '';
  }

  private report(rule: RuleId, offset: number, message: string): void {
    this.reportAt(rule, offset, this.path(), message);
  }

  private reportAt(rule: RuleId, offset: number, path: string, message: string): void {
    this.diagnostics.push({ rule, severity: ruleSpec(rule).severity, offset, path, message });
  }

  /** A decode error ends the stream: QEMU would have failed reading it. */
  streamError(e: StreamError): void {
    if (this.sawEof && !this.opts.strict) {
      // QEMU's qemu_loadvm_state returns at QEMU_VM_EOF: what follows is never read
      this.reportAt(
        'savevm/after-eof',
        e.offset,
        e.path.join(PATH_SEPARATOR),
        `after QEMU_VM_EOF, which ends the load: expected ${e.expected}, found ${e.found} (--strict: an error)`,
      );
      return;
    }
    this.diagnostics.push(diagnosticFromStreamError(e));
  }

  /** Check the next record of the stream. */
  add(rec: MainRecord): void {
    // the record a stream has most of: once the configuration is judged, only its own checks apply
    if (rec.kind === 'ram' && (this.sawConfiguration || this.firstRecord)) {
      this.ramRecord(rec);
      return;
    }
    if (rec.kind === 'libvirt_header') return;
    if (!rec.depth) this.checkFooter(rec);
    if (this.firstRecord && rec.kind === 'file_header') {
      this.firstRecord = false;
      return;
    }
    if (
      !this.sawConfiguration &&
      rec.kind !== 'configuration' &&
      !this.firstRecord &&
      (this.opts.sendConfiguration ?? this.opts.profile?.sendConfiguration ?? true) &&
      !rec.depth
    ) {
      this.report(
        'savevm/configuration-missing',
        rec.offset,
        'Configuration section missing (the destination has send-configuration on)',
      );
      this.configurationMissing = this.diagnostics[this.diagnostics.length - 1];
      this.sawConfiguration = true; // once
    }
    switch (rec.kind) {
      case 'configuration':
        this.sawConfiguration = true;
        // without --qemu-version or a profile, the destination is the release the machine type
        // names (before the capabilities: which names it knows depends on it)
        if (this.opts.qemuVersion === undefined && this.opts.profile?.qemuVersion === undefined) {
          const v = machineTypeVersion(rec.machineType);
          if (v) {
            this.version = v;
            this.multifdTransfer = this.decideMultifdTransfer();
          }
        }
        this.checkConfiguration(rec);
        for (const sub of rec.subsections)
          if (typeof sub.fields.targetPageBits === 'number') this.pageSize = 2 ** sub.fields.targetPageBits;
        for (const sub of rec.subsections) if (sub.fields.uuid instanceof Uint8Array) this.facts.uuid = sub.fields.uuid;
        break;
      case 'ram_block':
        this.facts.ramBlocks.set(rec.idstr, rec.usedLength);
        if (!rec.depth) this.checkRamBlockAgainstProfile(rec);
        break;
      case 'ram':
        this.ramRecord(rec);
        break;
      case 'vmstate':
        if (rec.idstr === FW_CFG_IDSTR)
          for (const f of fwCfgAcpiSizes(rec.node))
            this.report('vmstate/fw-cfg-acpi-size', rec.offset + f.at, f.message);
        break;
      case 'raw':
        if (rec.reason === RAW_MISMATCH) {
          // the destination's vmsd is what the description describes: it cannot load these bytes
          this.report(
            'vmstate/description-mismatch',
            rec.offset,
            `${this.current?.name ?? '?'}: the payload does not fit the device's vmdescription (QEMU fails loading it)`,
          );
        }
        break;
      case 'vmdescription':
        this.onlyDeviceState = false;
        try {
          this.vmdesc = parseVmDescription(rec.json);
        } catch {
          this.vmdesc = undefined; // QEMU never reads it: an unreadable description judges nothing
        }
        break;
      case 'command':
        this.onlyDeviceState = false;
        this.command(rec);
        break;
      case 'eof':
        if (!rec.depth) this.sawEof = true;
        break;
      case 'section': {
        this.sections.set(rec.sectionId, { idstr: rec.idstr, instanceId: rec.instanceId });
        this.current = { sectionId: rec.sectionId, name: rec.idstr, kind: rec.section };
        if (rec.section !== 'FULL') this.onlyDeviceState = false;
        if (rec.section === 'START' || rec.section === 'FULL') {
          this.checkVersion(rec.idstr, rec.versionId, rec.offset);
          if (rec.idstr === '')
            this.report('savevm/empty-idstr', rec.offset + 5, `Unable to read ID string for section ${rec.sectionId}`);
          // QEMU looks START and FULL sections up alike, by idstr and instance
          this.headers.push({
            idstr: rec.idstr,
            instanceId: rec.instanceId,
            versionId: rec.versionId,
            offset: rec.offset,
            path: this.path(),
          });
        }
        if (isVfioIdstr(rec.idstr)) {
          const dev = this.vfioDevice(rec.idstr, rec.instanceId);
          if (rec.section === 'PART') dev.sawPart = true;
        }
        break;
      }
      case 'section_footer':
        // (a VFIO section cannot end with END_OF_STATE due: the reader takes the footer's
        // bytes for the next tag, as vfio_load_state does, and that tag is judged)
        this.current = undefined;
        break;
      case 'vfio_tag':
        this.vfioTag(rec);
        break;
      case 'vfio_pci_config': {
        const dev = this.current && this.vfio.get(this.current.name);
        const name = dev?.name ?? '?';
        if (rec.pciVersion > 2)
          this.report(
            'vfio/pci-version',
            rec.offset,
            `${name}: PCIDevice version_id ${rec.pciVersion} is above the destination's 2`,
          );
        rec.irqState.forEach((v, i) => {
          if (v !== 0 && v !== 1)
            this.report(
              'vfio/irq-state',
              rec.offset + 4 + rec.config.length + 4 * i,
              `${name}: irq state ${i}: must be 0 or 1 (found ${v})`,
            );
        });
        break;
      }
      default:
        break;
    }
  }

  /** ram_load's checks of one RAM record */
  private ramRecord(rec: RamRecord): void {
    if (rec.op === 'multifd_flush') {
      this.facts.multifdFlushes++;
      if (!versionAtLeast(this.version, 8, 0))
        this.report(
          'ram/unknown-flag',
          rec.offset,
          `Unknown combination of migration flags: 0x200 (RAM_SAVE_FLAG_MULTIFD_FLUSH is unknown to QEMU ${this.version})`,
        );
    } else if (rec.op === 'eos') this.facts.ramEos++;
    else if ('block' in rec) {
      if (rec.op === 'xbzrle') this.checkXbzrle(rec);
      if (rec.op === 'compress_page') this.checkCompressedPage(rec);
      const used = this.facts.ramBlocks.get(rec.block);
      if (used !== undefined && rec.addr >= used)
        this.report(
          'ram/offset',
          rec.offset,
          `Illegal RAM offset ${rec.addr.toString(16)} in ${rec.block} (used_length ${hex(used)})`,
        );
      if (rec.op === 'zero' && rec.fill !== 0 && versionAtLeast(this.version, 8, 2))
        this.report('ram/zero-fill', rec.offset + rec.length - 1, `Found a zero page with value ${rec.fill}`);
    }
  }

  /** load_xbzrle: the encoding byte, then xbzrle_decode_buffer's checks of the runs */
  private checkXbzrle(rec: Extract<MainRecord, { kind: 'ram'; op: 'xbzrle' }>): void {
    const at = rec.offset + rec.length - rec.data.length - 3; // encoding u8, be16 length, data
    if (rec.encoding !== ENCODING_FLAG_XBZRLE) {
      this.report('ram/xbzrle', at, `Failed to load XBZRLE page - wrong compression! (encoding ${hex(rec.encoding)})`);
      return;
    }
    if (this.xbzrlePage?.length !== this.pageSize) this.xbzrlePage = new Uint8Array(this.pageSize);
    try {
      applyXbzrle(rec.data, this.xbzrlePage);
    } catch (e) {
      if (!(e instanceof XbzrleError)) throw e;
      this.report('ram/xbzrle', at + 3, `Failed to load XBZRLE page - decode error! (${e.message})`);
    }
  }

  /** check_section_footer: after each section's payload, the footer the destination expects (or not) */
  private checkFooter(rec: MainRecord): void {
    const expected = this.opts.sectionFooters ?? this.opts.profile?.sectionFooters ?? true;
    if (rec.kind === 'section_footer') {
      if (!expected && !this.footerReported) {
        this.footerReported = true;
        this.report(
          'savevm/section-footer',
          rec.offset,
          `Unknown savevm section type 126 (the destination has send-section-footer off)`,
        );
      }
      this.openSection = undefined;
      return;
    }
    if (rec.kind !== 'section' && rec.kind !== 'command' && rec.kind !== 'eof') return;
    const open = this.openSection;
    if (expected && open && !this.footerReported) {
      this.footerReported = true;
      this.reportAt('savevm/section-footer', rec.offset, open.path, `Missing section footer for ${open.idstr}`);
    }
    this.openSection =
      rec.kind === 'section'
        ? { idstr: rec.idstr, path: sectionPath(rec.sectionId, rec.idstr, rec.section) }
        : undefined;
  }

  /**
   * The machine type when no profile gives the destination's: the destination compares the
   * name up to its length or its first NUL with its own (machineTypeAccepted, which
   * checkConfiguration applies when the local name is known). No machine's name has other
   * characters, none is empty (a NUL first fails on every destination), and an empty name
   * passes on any. True when it reported the name.
   */
  private checkMachineTypeName(rec: Extract<MainRecord, { kind: 'configuration' }>): boolean {
    if (this.opts.profile?.machineType !== undefined) return false;
    const shown = receivedMachineType(rec.machineType);
    if (/^[A-Za-z0-9._-]*$/.test(shown) && (shown !== '' || rec.machineType === '')) return false;
    this.report(
      'savevm/machine-type',
      rec.offset + 5,
      `Machine type received is ${JSON.stringify(shown)}: not a machine type name`,
    );
    return true;
  }

  /**
   * The configuration as the destination loads it, stopping where QEMU stops: the
   * capabilities subsection's names (get_capability), the uuid subsection's post_load, then
   * configuration_post_load: the machine type, TARGET_PAGE_BITS, the validated capabilities.
   */
  private checkConfiguration(rec: Extract<MainRecord, { kind: 'configuration' }>): void {
    const source = this.sourceCapabilities(rec);
    if (!source) return;
    const p = this.opts.profile;
    for (const sub of rec.subsections) {
      const uuid = sub.fields.uuid;
      if (uuid instanceof Uint8Array && p?.uuid !== undefined && uuidText(uuid) !== p.uuid.toLowerCase()) {
        this.report(
          'savevm/uuid',
          rec.offset,
          `UUID received is ${uuidText(uuid)} and local is ${p.uuid.toLowerCase()}`,
        );
        return;
      }
    }
    if (p?.machineType !== undefined && !machineTypeAccepted(rec.machineType, p.machineType)) {
      this.report(
        'savevm/machine-type-mismatch',
        rec.offset + 5,
        `Machine type received is '${receivedMachineType(rec.machineType)}' and local is '${p.machineType}'`,
      );
      return;
    }
    if (this.checkMachineTypeName(rec)) return;
    const local =
      p?.targetPageBits ??
      (X86_MACHINE_TYPE.test(p?.machineType ?? receivedMachineType(rec.machineType))
        ? X86_TARGET_PAGE_BITS
        : undefined);
    for (const sub of rec.subsections) {
      const bits = sub.fields.targetPageBits;
      if (typeof bits === 'number' && local !== undefined && bits !== local) {
        this.report(
          'savevm/target-page-bits',
          rec.offset,
          `Received TARGET_PAGE_BITS is ${bits} but local is ${local}`,
        );
        return;
      }
    }
    this.checkCapabilities(rec, source);
  }

  /** ram_load's MEM_SIZE entries: each RAMBlock must exist on the destination with that length */
  private checkRamBlockAgainstProfile(rec: Extract<MainRecord, { kind: 'ram_block' }>): void {
    const blocks = this.opts.profile?.ramBlocks;
    if (!blocks) return;
    const local = blocks.find((b) => b.name === rec.idstr);
    if (!local) {
      this.report('ram/unknown-block', rec.offset, `Unknown ramblock "${rec.idstr}", cannot accept migration`);
      return;
    }
    // fw_cfg ROM blobs are resizeable RAMBlocks: QEMU resizes them to what the source sent, within limits
    const failure = ramBlockResizeFailure(rec.idstr, rec.usedLength, local.usedLength);
    if (failure) this.report('ram/block-length', rec.offset, failure);
  }

  /** do_data_decompress: the page's data must inflate (zlib, Z_FINISH) to at most one page */
  private checkCompressedPage(rec: Extract<MainRecord, { kind: 'ram'; op: 'compress_page' }>): void {
    try {
      zlib().inflateSync(rec.data, { maxOutputLength: this.pageSize, finishFlush: zlib().constants.Z_FINISH });
    } catch (e) {
      this.report(
        'ram/compressed-page',
        rec.offset + rec.length - rec.data.length,
        `decompress data failed (${(e as Error).message})`,
      );
    }
  }

  private vfioDevice(idstr: string, instanceId: number): VfioDeviceState {
    let d = this.vfio.get(idstr);
    if (!d) {
      d = { name: instanceId ? `${idstr} (instance ${instanceId})` : idstr, sawPart: false, loadReady: false };
      this.vfio.set(idstr, d);
    }
    return d;
  }

  /**
   * The capabilities subsection's names, each read by get_capability, which fails the load at
   * the first one the destination's release does not know (undefined then).
   */
  private sourceCapabilities(rec: Extract<MainRecord, { kind: 'configuration' }>): Set<string> | undefined {
    const source = new Set<string>();
    for (const s of rec.subsections) {
      const list = s.fields.capabilities;
      if (!Array.isArray(list)) continue;
      for (const c of list) {
        const name = stringField(c, 'name');
        if (!capabilityKnownTo(name, this.version)) {
          this.report('savevm/unknown-capability', rec.offset, `Received unknown capability ${name}`);
          return undefined;
        }
        source.add(name);
      }
    }
    return source;
  }

  /** configuration_validate_capabilities: every validated capability that differs, in QEMU's words (the destination's state first) */
  private checkCapabilities(rec: Extract<MainRecord, { kind: 'configuration' }>, source: Set<string>): void {
    const onOff = (on: boolean): string => (on ? 'on' : 'off');
    for (const c of VALIDATED_CAPABILITIES) {
      if (source.has(c) !== this.caps.has(c))
        this.report(
          'savevm/configuration-capabilities',
          rec.offset,
          `Capability ${c} is ${onOff(this.caps.has(c))}, but received capability is ${onOff(source.has(c))}`,
        );
    }
  }

  private checkVersion(idstr: string, version: number, offset: number): void {
    if (this.opts.profile?.devices) return; // the destination's own section versions decide (finish)
    const local = sectionHandler(idstr).loadsUpTo;
    if (local !== undefined && version > local) {
      this.report(
        'savevm/section-version',
        offset,
        `${idstr}: savevm: unsupported version ${version} for '${idstr}' v${local}`,
      );
    }
  }

  /**
   * The destination's postcopy state through the postcopy commands (POSTCOPY_COMMAND_STATES):
   * false when the command comes in a state that refuses it (QEMU stops there).
   */
  private postcopyStep(rec: Extract<MainRecord, { kind: 'command' }>): boolean {
    const step = POSTCOPY_COMMAND_STATES.get(rec.cmd);
    if (!step) return true;
    const was = this.postcopyState;
    if (step.to !== undefined) this.postcopyState = step.to;
    if (step.from.includes(was)) return true;
    this.report('savevm/postcopy-state', rec.offset, `${step.name} in wrong postcopy state (${was})`);
    return false;
  }

  private command(rec: Extract<MainRecord, { kind: 'command' }>): void {
    if (rec.data) {
      this.report(
        'savevm/unknown-command',
        rec.offset,
        `MIG_CMD 0x${rec.cmd.toString(16)} unknown (len 0x${rec.len.toString(16)})`,
      );
      return;
    }
    if (!this.postcopyStep(rec)) return;
    switch (rec.cmd) {
      case MIG_CMD_OPEN_RETURN_PATH:
        this.returnPathAt ??= rec.offset;
        break;
      case MIG_CMD_PING: {
        const value = intField(rec.fields ?? {}, 'value');
        if (this.returnPathAt === undefined)
          this.report(
            'savevm/ping-without-return-path',
            rec.offset,
            `CMD_PING (0x${value.toString(16)}) received with no return path`,
          );
        this.facts.pings.push({ value, offset: rec.offset });
        break;
      }
      case MIG_CMD_POSTCOPY_ADVISE: {
        const postcopy = this.caps.has('postcopy-ram');
        if (rec.len === 16 && !postcopy)
          this.report('savevm/postcopy-advise', rec.offset, 'RAM postcopy is disabled but have 16 byte advise');
        if (rec.len === 0 && postcopy)
          this.report('savevm/postcopy-advise', rec.offset, 'RAM postcopy is enabled but have 0 byte advise');
        break;
      }
      case MIG_CMD_SWITCHOVER_START:
        this.facts.switchoverStart = true;
        if (!versionAtLeast(this.version, 10, 0))
          this.report(
            'savevm/unknown-command',
            rec.offset,
            `MIG_CMD 0x${rec.cmd.toString(16)} unknown (len 0x${rec.len.toString(16)}) (MIG_CMD_SWITCHOVER_START is newer than QEMU ${this.version})`,
          );
        break;
      default:
        break;
    }
  }

  private vfioTag(rec: Extract<MainRecord, { kind: 'vfio_tag' }>): void {
    const cur = this.current;
    if (!cur) return;
    const dev = this.vfioDevice(cur.name, this.sections.get(cur.sectionId)?.instanceId ?? 0);
    const n = dev.name;
    if (dev.expect) {
      const want = dev.expect;
      dev.expect = undefined;
      if (rec.tag !== 'END_OF_STATE') {
        if (want === 'setup-eos')
          this.report('vfio/setup-eos', rec.offset, `${n}: SETUP STATE: EOS not found ${hex(rec.value)}`);
        else
          this.report(
            'vfio/config-end-flag',
            rec.offset,
            `${n}: Failed loading device config space, end flag incorrect ${hex(rec.value)}`,
          );
      }
      return;
    }
    if (rec.tag === null) {
      this.report('vfio/unknown-tag', rec.offset, `${n}: Unknown tag ${hex(rec.value)}`);
      return;
    }
    const [maj, min] = VFIO_TAG_SINCE[rec.tag];
    if (!versionAtLeast(this.version, maj, min)) {
      this.report(
        'vfio/unknown-tag',
        rec.offset,
        `${n}: Unknown tag ${hex(rec.value)} (${VFIO_TAG_QEMU_NAME[rec.tag]} is newer than QEMU ${this.version})`,
      );
      return;
    }
    switch (rec.tag) {
      case 'DEV_SETUP_STATE':
        dev.expect = 'setup-eos';
        break;
      case 'DEV_CONFIG_STATE':
        if (this.multifdTransfer) {
          this.report(
            'vfio/config-in-multifd',
            rec.offset,
            `${n}: got DEV_CONFIG_STATE in main migration channel but doing multifd transfer`,
          );
        }
        dev.expect = 'config-eos';
        break;
      case 'DEV_INIT_DATA_SENT':
        if (!this.caps.has('switchover-ack')) {
          this.report(
            'vfio/init-data-sent-without-ack',
            rec.offset,
            `${n}: Received INIT_DATA_SENT but switchover ack is not used`,
          );
        } else {
          this.initDataSent.push({ device: cur.name, offset: rec.offset, path: this.path() });
        }
        break;
      case 'DEV_CONFIG_LOAD_READY':
        if (!this.multifdTransfer)
          this.report(
            'vfio/load-ready-outside-multifd',
            rec.offset,
            `${n}: got DEV_CONFIG_LOAD_READY outside multifd transfer`,
          );
        else if (!this.opts.vfioLoadConfigAfterIter)
          this.report('vfio/load-ready-disabled', rec.offset, `${n}: got DEV_CONFIG_LOAD_READY but was disabled`);
        else if (dev.loadReady)
          this.report('vfio/load-ready-duplicate', rec.offset, `${n}: duplicate DEV_CONFIG_LOAD_READY`);
        dev.loadReady = true;
        break;
      default:
        break;
    }
  }

  /** The destination has the devices the vmdescription lists (same machine setup), at those versions. */
  private checkAgainstVmdesc(): void {
    if (this.opts.profile?.devices) {
      this.checkAgainstProfileDevices(this.opts.profile.devices);
      return;
    }
    const desc = this.opts.profile?.vmdescription ?? this.vmdesc ?? this.opts.vmdesc;
    if (!desc) return;
    const index = new DeviceIndex(desc);
    for (const h of this.headers) {
      const d = index.peek(h.idstr, h.instanceId);
      if (!d && !sectionHandler(h.idstr).iterative) {
        this.reportAt(
          'savevm/unknown-section',
          h.offset,
          h.path,
          `Unknown savevm section or instance '${h.idstr}' ${h.instanceId}: neither a live handler nor a device of the vmdescription`,
        );
      }
      if (d?.version !== undefined && h.versionId > d.version) {
        this.reportAt(
          'savevm/section-version',
          h.offset,
          h.path,
          `savevm: unsupported version ${h.versionId} for '${h.idstr}' v${d.version}`,
        );
      }
    }
  }

  /** find_se and the version check, against the sections the destination has */
  private checkAgainstProfileDevices(devices: readonly ProfileDevice[]): void {
    const local = new Map(devices.map((d) => [`${d.idstr}\0${d.instanceId}`, d]));
    for (const h of this.headers) {
      const d = local.get(`${h.idstr}\0${h.instanceId}`);
      if (!d) {
        this.reportAt(
          'savevm/unknown-section',
          h.offset,
          h.path,
          `Unknown savevm section or instance '${h.idstr}' ${h.instanceId}. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices`,
        );
      } else if (h.versionId > d.versionId) {
        this.reportAt(
          'savevm/section-version',
          h.offset,
          h.path,
          `savevm: unsupported version ${h.versionId} for '${h.idstr}' v${d.versionId}`,
        );
      }
    }
  }

  /** Rules that need the whole stream: switchover-ack accounting, EOF, the vmdescription. */
  finish(): Diagnostic[] {
    this.checkAgainstVmdesc();
    if (this.configurationMissing && this.onlyDeviceState && this.sawEof) {
      // qemu_save_device_state (xen-save-devices-state, COLO) writes no configuration: a
      // destination with send-configuration on refuses it as it refuses any stream without one
      this.configurationMissing.message +=
        '; this is a device-state-only stream (xen-save-devices-state): only a destination with send-configuration off loads it (--no-configuration)';
    }
    // qemu_loadvm_state counts the handlers that need an ack (VFIO devices with PRE_COPY:
    // in the stream, those that iterate); each INIT_DATA_SENT approves one.
    let pending = [...this.vfio.values()].filter((d) => d.sawPart).length;
    const newMode = versionAtLeast(this.version, 11, 1);
    const seen = new Set<string>();
    for (const e of this.initDataSent) {
      if (newMode && seen.has(e.device)) continue; // 11.1: a device may report initial data again after a re-init
      seen.add(e.device);
      if (pending === 0) {
        this.reportAt(
          'vfio/switchover-ack-count',
          e.offset,
          e.path,
          `${e.device}: qemu_loadvm_approve_switchover failed, err=-22 (Invalid argument): no switchover ack pending`,
        );
        continue;
      }
      pending--;
      if (pending === 0 && (this.returnPathAt === undefined || this.returnPathAt > e.offset)) {
        this.reportAt(
          'vfio/switchover-ack-no-return-path',
          e.offset,
          e.path,
          `${e.device}: qemu_loadvm_approve_switchover failed, err=-5 (Input/output error): MIG_RP_MSG_SWITCHOVER_ACK needs the return path, never opened (MIG_CMD_OPEN_RETURN_PATH)`,
        );
      }
    }
    return this.diagnostics;
  }

  /** VFIO devices of the main channel: does each transfer its state over multifd, did it send LOAD_READY? */
  vfioDevices(): { idstr: string; loadReady: boolean }[] {
    return [...this.vfio.entries()].map(([idstr, d]) => ({ idstr, loadReady: d.loadReady }));
  }

  get doesMultifdTransfer(): boolean {
    return this.multifdTransfer;
  }

  get destinationVersion(): string {
    return this.version;
  }

  get multifdCompression(): string | undefined {
    return this.opts.multifdCompression;
  }

  get loadConfigAfterIter(): boolean {
    return this.opts.vfioLoadConfigAfterIter ?? false;
  }

  /** Whether the destination has this capability (QEMU's name), given or carried by the stream. */
  hasCapability(c: string): boolean {
    return this.caps.has(c);
  }
}
