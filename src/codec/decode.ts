import { ConfigurationSubsections, SubsectionHeader } from '../../grammar/configuration.js';
import { DEFAULT_TARGET_PAGE_SIZE } from '../../grammar/ram.js';
import {
  FileHeader,
  SectionFooter,
  SectionHeaderPartEnd,
  SectionHeaderStartFull,
  VmDescriptionHeader,
  MIG_CMD_PACKAGED,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_POSTCOPY_RUN,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  SectionType,
  type SectionKind,
} from '../../grammar/savevm.js';
import { hex, PATH_SEPARATOR, StreamError } from '../model/errors.js';
import { latin1, StreamReader } from '../io/reader.js';
import { intField, listField, stringField } from '../layout/fields.js';
import { readLayout } from '../layout/read.js';
import { readVmstate } from '../vmstate/codec.js';
import { DeviceIndex, vmdescriptionText, type VmDescription } from '../vmstate/vmdesc.js';
import type { VmstateCache } from '../vmstate/cache.js';
import { BufferSource } from '../io/source.js';
import { readLibvirtHeader } from '../libvirt/codec.js';
import type {
  LibvirtHeaderRecord,
  CommandRecord,
  ConfigurationSubsectionValue,
  DecodeWarning,
  MainRecord,
  SectionHeaderRecord,
} from '../model/records.js';
import { withDepth } from '../model/records.js';
import { scanForFooter } from './section-scan.js';
import { readCommand } from './commands.js';
import { builtinByIdstr, readBuiltinPayload } from '../sections/builtin.js';
import { sectionHandler } from '../../grammar/handlers.js';
import { readVfioPayload } from '../vfio/codec.js';
import { RamSectionDecoder, type RamPayload, type RamReadState } from '../ram/codec.js';

export interface DecodeOptions {
  /** TARGET_PAGE_SIZE when the stream does not say (no target-page-bits subsection); default 4096 */
  pageSize?: number;
  /** copy page data out of the read buffer so records can be kept */
  copyData?: boolean;
  /** largest undescribed section kept as raw bytes (footer scan window) */
  maxRawSection?: number;
  /** the stream's vmdescription (located ahead of time) or one given by the user */
  vmdesc?: VmDescription;
  /** capabilities the stream does not carry (destination settings), e.g. "x-ignore-shared" */
  capabilities?: Iterable<string>;
  onWarning?: (w: DecodeWarning) => void;
  /**
   * mapped-ram: seek over page slots the bitmap marks absent instead of reading them (the
   * file is sparse there). Faster, but a non-zero absent slot is then not kept: not for
   * round trips.
   */
  skipAbsentMappedRamPages?: boolean;
  /** the vmdescription will only come at the end (a pipe): keep device sections raw without a warning each */
  vmdescLater?: boolean;
  /** @internal device payloads read before and their trees, taken again for the same bytes (the fuzzer's) */
  vmstateCache?: VmstateCache;
}

/** Why a device section payload was kept raw (the loader and formatters tell them apart). */
export const RAW_UNDESCRIBED = 'undescribed section payload';
export const RAW_MISMATCH = 'section payload that does not fit its vmdescription';

/** QEMU's vmdescription is a few hundred KiB for a typical VM; a larger length is a lie. */
const MAX_VMDESC_BYTES = 256 << 20;

export interface SectionInfo {
  sectionId: number;
  idstr: string;
  instanceId: number;
  versionId: number;
}

/**
 * Where a decoder can start again on bytes that agree with the stream so far: after a RAM page
 * record of a top-level RAM section (inside its payload) or after a top-level section footer
 * (between records). It holds everything the decoder carries from record to record; a fuzzer
 * keeps a few along its seed and reads a mutant from the last one before the first byte it
 * changed (src/fuzz/resume.ts).
 */
export interface DecoderCheckpoint {
  /** the first byte not read yet */
  readonly offset: number;
  /** the records so far depend on the bytes before this offset (at least `offset`: further when a decision looked ahead) */
  readonly decidedBy: number;
  readonly path: readonly string[];
  readonly sections: ReadonlyMap<number, SectionInfo>;
  readonly capabilities: ReadonlySet<string>;
  readonly pageSize: number;
  readonly footers: boolean | undefined;
  readonly postcopyAdvised: boolean;
  readonly ram: RamReadState;
  /** the vmdescription entries used so far, by key (undefined without a vmdescription) */
  readonly devicesTaken: ReadonlyMap<string, number> | undefined;
  /** the RAM section whose payload goes on, when the checkpoint is inside one */
  readonly inRam: RamSectionAt | undefined;
}

/** A top-level RAM section being read: what its footer check and error paths need. */
interface RamSectionAt {
  readonly kind: SectionKind;
  readonly sectionId: number;
}

/** RAM records after which the payload loop starts over at the next record header. */
const RESUMABLE_RAM_OPS: ReadonlySet<string> = new Set(['page', 'zero', 'xbzrle', 'compress_page', 'multifd_flush']);

/** A RAM section's payload, handed from the section generator up to records(), which reads it. */
class RamLane {
  constructor(readonly records: RamPayload) {}
}

/**
 * Streaming decoder of the main channel: bytes in, Records out, in stream order.
 * Throws StreamError at the first byte it cannot account for; everything decoded before
 * it has already been yielded.
 */
export class MainChannelDecoder {
  readonly sections = new Map<number, SectionInfo>();
  readonly capabilities = new Set<string>();
  pageSize: number;
  /** undefined until the first section tells whether footers are sent */
  footers: boolean | undefined;
  private postcopyAdvised = false;
  private readonly ram: RamSectionDecoder;
  private readonly copy: boolean;
  private readonly maxRaw: number;
  private readonly devices: DeviceIndex | undefined;
  /** the last record handed out, and whether it came from a RAM payload (checkpointPlace looks at it) */
  private lastOut: MainRecord | undefined;
  private lastFromLane = false;
  /** eachRecord's consumer: RAM pages go to it from the payload loop */
  private take: ((rec: MainRecord) => void) | undefined;
  /** the top-level RAM section whose payload is being read */
  private ramSection: RamSectionAt | undefined;

  constructor(
    readonly r: StreamReader,
    private readonly opts: DecodeOptions = {},
  ) {
    this.pageSize = opts.pageSize ?? DEFAULT_TARGET_PAGE_SIZE;
    this.copy = opts.copyData ?? false;
    this.maxRaw = opts.maxRawSection ?? r.capacity - 1024;
    for (const c of opts.capabilities ?? []) this.capabilities.add(c);
    this.devices = opts.vmdesc ? new DeviceIndex(opts.vmdesc) : undefined;
    this.ram = new RamSectionDecoder({
      r,
      pageSize: () => this.pageSize,
      capabilities: this.capabilities,
      postcopyAdvised: () => this.postcopyAdvised,
      copy: this.copy,
      skipAbsentMappedRamPages: opts.skipAbsentMappedRamPages ?? false,
      data: (n, what) => this.data(n, what),
      rawChunks: (n, reason, depth) => this.rawChunks(n, reason, depth),
    });
    if (opts.vmdesc?.page_size && opts.pageSize === undefined) this.pageSize = opts.vmdesc.page_size;
  }

  private warn(message: string, offset = this.r.offset): void {
    this.opts.onWarning?.({ offset, path: this.r.path.join(PATH_SEPARATOR), message });
  }

  private data(n: number, what: string): Uint8Array {
    return this.copy ? this.r.copyBytes(n, what) : this.r.bytes(n, what);
  }

  records(): Generator<MainRecord> {
    return this.main(undefined);
  }

  /**
   * Every record in stream order handed to `take`, from the start or from a checkpoint (see
   * resume): what iterating records() gives, with a RAM section's pages handed over directly
   * rather than each through a generator (the reference loader's way: pages are most records).
   * A StreamError ends it as it ends records().
   */
  eachRecord(take: (rec: MainRecord) => void, from?: DecoderCheckpoint): void {
    this.take = take;
    try {
      for (const rec of from ? this.resume(from) : this.records()) take(rec);
    } finally {
      this.take = undefined;
    }
  }

  /**
   * Where the decoder could start again on the same bytes, right after the record it handed
   * out last: in a RAM section's payload, between top-level records, or (undefined) not there
   * (inside a device section, a PACKAGED blob, MEM_SIZE). `checkpoint()` takes it.
   */
  get checkpointPlace(): 'ram' | 'top' | undefined {
    const v = this.lastOut;
    if (!v || v.depth) return undefined;
    if (this.lastFromLane) return v.kind === 'ram' && RESUMABLE_RAM_OPS.has(v.op) ? 'ram' : undefined;
    // after a top-level footer the section generator only drops its path entry and returns
    return v.kind === 'section_footer' ? 'top' : undefined;
  }

  /** The decoder's state right after the record it handed out last, if it can start again there (checkpointPlace). */
  checkpoint(): DecoderCheckpoint | undefined {
    const place = this.checkpointPlace;
    if (!place) return undefined;
    return {
      offset: this.r.offset,
      decidedBy: this.r.decidedBy,
      path: [...this.r.path],
      sections: new Map(this.sections),
      capabilities: new Set(this.capabilities),
      pageSize: this.pageSize,
      footers: this.footers,
      postcopyAdvised: this.postcopyAdvised,
      ram: this.ram.state(),
      devicesTaken: this.devices?.taken(),
      inRam: place === 'ram' ? this.ramSection : undefined,
    };
  }

  /**
   * The records after a checkpoint, read by a fresh decoder whose reader starts at its offset
   * (with the same vmdescription and options as the decoder that took it).
   */
  resume(cp: DecoderCheckpoint): Generator<MainRecord> {
    if (this.r.offset !== cp.offset)
      throw new Error(`resume: the reader is at ${hex(this.r.offset)}, the checkpoint at ${hex(cp.offset)}`);
    this.r.path.splice(0, this.r.path.length, ...cp.path);
    this.sections.clear();
    for (const [k, v] of cp.sections) this.sections.set(k, v);
    this.capabilities.clear();
    for (const c of cp.capabilities) this.capabilities.add(c);
    this.pageSize = cp.pageSize;
    this.footers = cp.footers;
    this.postcopyAdvised = cp.postcopyAdvised;
    this.ram.restore(cp.ram);
    if (cp.devicesTaken) this.devices?.restoreTaken(cp.devicesTaken);
    return this.main(cp.inRam ? this.ramSectionRest(cp.inRam) : this.recordLoop(undefined, 0));
  }

  /** The rest of a top-level RAM section from inside its payload, then the records after it. */
  private *ramSectionRest(at: RamSectionAt): Generator<MainRecord | RamLane, boolean> {
    this.ramSection = at;
    yield new RamLane(this.ram.payload(at.kind, 0));
    yield* this.sectionFooter(at.sectionId, 0);
    return yield* this.recordLoop(undefined, 0);
  }

  /**
   * The stream's records: the file header and configuration first unless `from` goes on from
   * a checkpoint, then the top-level records, then what follows QEMU_VM_EOF. One generator
   * (records() and resume() return it): every level of generator costs a little on each page.
   */
  private *main(from: Generator<MainRecord | RamLane, boolean> | undefined): Generator<MainRecord> {
    const r = this.r;
    let loop = from;
    if (!loop) {
      const wrapper = this.libvirtHeader();
      if (wrapper) yield wrapper;
      yield this.fileHeader();
      if (r.peekU8() === SectionType.QEMU_VM_CONFIGURATION) yield this.configuration();
      loop = this.recordLoop(undefined, 0);
    }
    let sawEof: boolean;
    for (;;) {
      const step = loop.next();
      if (step.done) {
        sawEof = step.value;
        break;
      }
      const rec = step.value;
      if (rec instanceof RamLane) {
        // the RAM section's records come straight from its RamPayload, not up through the
        // section and record-loop generators; to eachRecord's consumer with no generator at all
        this.lastFromLane = true;
        const take = this.take;
        try {
          if (take) this.pumpLane(rec.records, take);
          else
            for (let v = rec.records.next(); v !== undefined; v = rec.records.next()) {
              this.lastOut = v;
              yield v;
            }
        } catch (e) {
          throw this.inRamRecord(e);
        }
        this.lastFromLane = false;
      } else {
        this.lastOut = rec;
        yield rec;
      }
    }
    this.lastOut = undefined;
    if (!sawEof) return;
    // After QEMU_VM_EOF: the vmdescription, if the source sent one. Nothing else belongs here.
    if (r.peekU8() === SectionType.QEMU_VM_VMDESCRIPTION) {
      const offset = r.offset;
      r.path.push(`vmdescription @${hex(offset)}`);
      r.u8();
      const n = readLayout(r, VmDescriptionHeader, 'vmdescription').jsonLength;
      if (n > MAX_VMDESC_BYTES)
        throw r.error('limit', `a vmdescription of at most ${MAX_VMDESC_BYTES} bytes`, `${n}`, offset + 1);
      const parts: string[] = [];
      // in one piece (as a rule: a reader holds 4 MiB): the same string as the last stream's for the same bytes
      r.chunks(n, 'vmdescription JSON', (c) => parts.push(c.length === n ? vmdescriptionText(c) : latin1(c)));
      r.path.pop();
      const json = parts.length === 1 ? parts[0]! : parts.join('');
      yield { kind: 'vmdescription', offset, length: r.offset - offset, json };
    }
    while (!r.atEnd()) {
      const offset = r.offset;
      const n = Math.min(r.available, 1 << 20);
      this.warn(`${n} bytes after the end of the stream`, offset);
      yield {
        kind: 'raw',
        offset,
        length: n,
        reason: 'trailing bytes after the stream',
        data: this.data(n, 'trailing bytes'),
      };
    }
  }

  /**
   * A RAM section's records to eachRecord's consumer. A function of its own: V8 optimizes the
   * loop that runs a page at a time while it runs (on-stack replacement), and a small function
   * is quick to optimize, where `main` took another compile that was still running, and
   * waited for, when the process ended.
   */
  private pumpLane(records: RamPayload, take: (rec: MainRecord) => void): void {
    for (let v = records.next(); v !== undefined; v = records.next()) {
      this.lastOut = v;
      take(v);
    }
  }

  /** A libvirt save image carries the QEMU stream after its own header and the domain XML. */
  private libvirtHeader(): LibvirtHeaderRecord | undefined {
    return readLibvirtHeader(this.r, (m, o) => this.warn(m, o));
  }

  private fileHeader(): MainRecord {
    const r = this.r;
    const offset = r.offset;
    r.path.push('file header');
    const h = readLayout(r, FileHeader, 'file header');
    const magic = h.magic;
    const version = h.version;
    if (magic !== QEMU_VM_FILE_MAGIC) {
      throw r.error('bad-magic', `QEMU_VM_FILE_MAGIC ${hex(QEMU_VM_FILE_MAGIC)} ("QEVM")`, hex(magic), offset);
    }
    if (version !== QEMU_VM_FILE_VERSION) {
      throw r.error('bad-version', `QEMU_VM_FILE_VERSION ${QEMU_VM_FILE_VERSION}`, `${version}`, offset + 4);
    }
    r.path.pop();
    return { kind: 'file_header', offset, length: 8, magic, version };
  }

  private configuration(): MainRecord {
    const r = this.r;
    const offset = r.offset;
    r.path.push(`QEMU_VM_CONFIGURATION @${hex(offset)}`);
    r.u8();
    const len = r.be32('machine type length');
    if (len > 256) throw r.error('bad-configuration', 'a machine type name of at most 256 bytes', `${len}`, offset + 1);
    const machineType = latin1(r.bytes(len, 'machine type name'));
    const subsections: ConfigurationSubsectionValue[] = [];
    while (r.peekU8() === SectionType.QEMU_VM_SUBSECTION) {
      const subAt = r.offset;
      const head = readLayout(r, SubsectionHeader, 'subsection');
      const name = head.name;
      const def = ConfigurationSubsections.find((s) => s.name === name);
      if (!def) {
        throw r.error(
          'bad-configuration',
          `a configuration subsection (${ConfigurationSubsections.map((s) => s.name).join(', ')})`,
          JSON.stringify(name),
          subAt,
        );
      }
      r.path.push(name);
      const fields = readLayout(r, def.fields, name);
      r.path.pop();
      subsections.push({ name, version: head.version, fields });
      if (name === 'configuration/target-page-bits') {
        const bits = intField(fields, 'targetPageBits');
        if (bits < 10 || bits > 30)
          throw r.error('bad-configuration', 'target-page-bits between 10 and 30', `${bits}`, subAt);
        this.pageSize = 2 ** bits;
      }
      if (name === 'configuration/capabilities') {
        for (const c of listField(fields, 'capabilities')) this.capabilities.add(stringField(c, 'name'));
      }
    }
    r.path.pop();
    return { kind: 'configuration', offset, length: r.offset - offset, machineType, subsections };
  }

  /**
   * Top-level records until QEMU_VM_EOF (returns true), or until `limit` for the
   * contents of a PACKAGED blob (returns false).
   */
  private *recordLoop(limit: number | undefined, depth: number): Generator<MainRecord | RamLane, boolean> {
    const r = this.r;
    for (;;) {
      if (limit !== undefined && r.offset >= limit) {
        if (r.offset > limit)
          throw r.error(
            'bad-command',
            `records ending at the PACKAGED blob end ${hex(limit)}`,
            `a record ending at ${hex(r.offset)}`,
          );
        return false;
      }
      const offset = r.offset;
      const type = r.peekU8();
      if (type < 0) {
        throw r.error(
          'truncated',
          depth ? 'the rest of the PACKAGED blob' : 'a record type byte (the stream has no QEMU_VM_EOF)',
          'end of stream',
        );
      }
      switch (type) {
        case SectionType.QEMU_VM_EOF:
          r.u8();
          yield withDepth({ kind: 'eof', offset, length: 1 }, depth);
          if (depth) this.warn('QEMU_VM_EOF inside a PACKAGED blob', offset);
          else return true;
          break;
        case SectionType.QEMU_VM_SECTION_START:
        case SectionType.QEMU_VM_SECTION_FULL:
        case SectionType.QEMU_VM_SECTION_PART:
        case SectionType.QEMU_VM_SECTION_END:
          yield* this.section(depth);
          break;
        case SectionType.QEMU_VM_COMMAND: {
          const cmd = this.command(depth);
          yield cmd;
          if (cmd.cmd === MIG_CMD_PACKAGED) {
            const blobEnd = r.offset + intField(cmd.fields ?? {}, 'blobLength');
            r.path.push(`MIG_CMD_PACKAGED @${hex(offset)}`);
            yield* this.recordLoop(blobEnd, depth + 1);
            r.path.pop();
          }
          if (depth && cmd.cmd === MIG_CMD_POSTCOPY_RUN && limit !== undefined && r.offset < limit) {
            // QEMU's nested loader stops at RUN and drops the rest of the blob: keep it.
            const n = limit - r.offset;
            this.warn(`${n} bytes after MIG_CMD_POSTCOPY_RUN inside the PACKAGED blob`);
            yield* this.rawChunks(n, 'bytes after POSTCOPY_RUN in the PACKAGED blob', depth);
          }
          break;
        }
        default:
          throw r.error(
            'unknown-section-type',
            'a top-level record type (QEMU_VM_EOF, QEMU_VM_SECTION_START/PART/END/FULL or QEMU_VM_COMMAND)',
            `byte ${hex(type)}`,
          );
      }
    }
  }

  /** A RAM payload error, named with the record it is in (tracked as a number: nothing per record otherwise). */
  private inRamRecord(e: unknown): unknown {
    if (!(e instanceof StreamError) || e.path.length !== this.r.path.length) return e;
    return new StreamError(
      e.code,
      e.offset,
      [...e.path, `${this.ram.recordOp} record @${hex(this.ram.recordAt)}`],
      e.expected,
      e.found,
    );
  }

  private *rawChunks(n: number, reason: string, depth: number): Generator<MainRecord> {
    let left = n;
    while (left > 0) {
      const offset = this.r.offset;
      const take = Math.min(left, 1 << 20);
      yield withDepth({ kind: 'raw', offset, length: take, reason, data: this.data(take, reason) }, depth);
      left -= take;
    }
  }

  private command(depth: number): CommandRecord {
    const rec = readCommand(this.r, (m, o) => this.warn(m, o));
    if (rec.cmd === MIG_CMD_POSTCOPY_ADVISE) this.postcopyAdvised = true;
    return withDepth(rec, depth);
  }

  private *section(depth: number): Generator<MainRecord | RamLane> {
    const r = this.r;
    const offset = r.offset;
    const type = r.u8();
    const kind: SectionKind =
      type === SectionType.QEMU_VM_SECTION_START
        ? 'START'
        : type === SectionType.QEMU_VM_SECTION_FULL
          ? 'FULL'
          : type === SectionType.QEMU_VM_SECTION_PART
            ? 'PART'
            : 'END';
    let info: SectionInfo;
    let sectionId: number;
    if (kind === 'START' || kind === 'FULL') {
      const h = readLayout(r, SectionHeaderStartFull, 'section');
      sectionId = h.sectionId;
      info = { sectionId, idstr: h.idstr, instanceId: h.instanceId, versionId: h.versionId };
      this.sections.set(sectionId, info);
    } else {
      sectionId = readLayout(r, SectionHeaderPartEnd, 'section').sectionId;
      const known = this.sections.get(sectionId);
      if (!known) {
        throw r.error(
          'unknown-section-id',
          `the id of a section opened by QEMU_VM_SECTION_START`,
          `section id ${sectionId} in ${kind}`,
          offset + 1,
        );
      }
      info = known;
    }
    const label = `section ${sectionId} ${JSON.stringify(info.idstr)} (${kind})`;
    r.path.push(label);
    const header: SectionHeaderRecord = {
      kind: 'section',
      offset,
      length: r.offset - offset,
      section: kind,
      sectionId,
      idstr: info.idstr,
      instanceId: info.instanceId,
      versionId: info.versionId,
    };
    yield withDepth(header, depth);

    const builtin = builtinByIdstr.get(info.idstr);
    const handler = sectionHandler(info.idstr).kind;
    if (handler === 'ram') {
      // records() reads the payload and comes back here after RAM_SAVE_FLAG_EOS
      this.ramSection = depth ? undefined : { kind, sectionId };
      yield new RamLane(this.ram.payload(kind, depth));
    } else if (handler === 'vfio') {
      const described = kind === 'FULL' ? this.devices?.take(info.idstr, info.instanceId)?.size : undefined;
      const ctx = { copy: this.copy, warn: (m: string, o?: number) => this.warn(m, o), describedSize: described };
      for (const rec of readVfioPayload(r, ctx)) yield withDepth(rec, depth);
    }
    // s390-skeys is old-style: described (as one buffer) whenever a vmdescription exists
    else if (
      handler === 'builtin' &&
      builtin &&
      !(info.idstr === 's390-skeys' && this.devices?.peek(info.idstr, info.instanceId))
    ) {
      for (const it of readBuiltinPayload(r, builtin)) {
        yield withDepth(
          {
            kind: 'section_item',
            offset: it.offset,
            length: it.length,
            handler: builtin.idstr,
            item: it.item,
            fields: it.fields,
          },
          depth,
        );
      }
    } else yield* this.devicePayload(info, depth);
    yield* this.sectionFooter(sectionId, depth);
  }

  /** Section footer: sent by every QEMU with send-section-footer on (the default). Ends the section's path entry. */
  private *sectionFooter(sectionId: number, depth: number): Generator<MainRecord> {
    const r = this.r;
    const t = r.peekU8();
    if (t === SectionType.QEMU_VM_SECTION_FOOTER) {
      const fOffset = r.offset;
      r.u8();
      const fid = readLayout(r, SectionFooter, 'QEMU_VM_SECTION_FOOTER').sectionId;
      if (fid !== sectionId) {
        throw r.error(
          'footer-mismatch',
          `QEMU_VM_SECTION_FOOTER for section ${sectionId}`,
          `footer for section ${fid}`,
          fOffset,
        );
      }
      if (this.footers === false)
        throw r.error('missing-footer', 'no section footers (earlier sections had none)', 'a footer', fOffset);
      this.footers = true;
      // the section is over before its footer is handed out: a checkpoint after it is between records
      r.path.pop();
      yield withDepth({ kind: 'section_footer', offset: fOffset, length: 5, sectionId }, depth);
      return;
    } else if (this.footers === true) {
      if (t < 0) throw r.error('truncated', `QEMU_VM_SECTION_FOOTER (0x7e) for section ${sectionId}`, 'end of stream');
      throw r.error('missing-footer', `QEMU_VM_SECTION_FOOTER (0x7e) for section ${sectionId}`, `byte ${hex(t)}`);
    } else {
      this.footers = false;
    }
    r.path.pop();
  }

  private *devicePayload(info: SectionInfo, depth: number): Generator<MainRecord> {
    const r = this.r;
    const offset = r.offset;
    const desc = this.devices?.take(info.idstr, info.instanceId);
    if (this.footers !== false) {
      // With footers the section's end is known before its contents are read: a
      // vmdescription that disagrees with the bytes cannot derail the rest of the stream.
      const n = scanForFooter(r, info.sectionId, new Set(this.sections.keys()), this.maxRaw);
      if (n !== undefined) {
        const bytes = r.copyBytes(n, 'section payload');
        const known = desc && this.opts.vmstateCache?.get(desc, bytes);
        if (known) {
          yield withDepth(
            { kind: 'vmstate', offset, length: n, idstr: info.idstr, instanceId: info.instanceId, node: known },
            depth,
          );
          return;
        }
        if (desc) {
          // read where the bytes are; a payload under 16 bytes keeps the 16-byte buffer, so a
          // field longer than the payload stays a truncation, not a read over the buffer size
          const sub =
            n >= 16
              ? StreamReader.over(bytes, r.source.name, offset)
              : new StreamReader(new BufferSource(bytes, r.source.name, offset), 16, offset);
          sub.path.push(...r.path);
          try {
            const node = readVmstate(sub, desc);
            if (sub.offset === offset + n) {
              this.opts.vmstateCache?.set(desc, bytes, node);
              yield withDepth(
                { kind: 'vmstate', offset, length: n, idstr: info.idstr, instanceId: info.instanceId, node },
                depth,
              );
              return;
            }
            this.warn(`the vmdescription describes ${sub.offset - offset} of the ${n} payload bytes; kept raw`, offset);
          } catch (e) {
            if (!(e instanceof StreamError)) throw e;
            this.warn(`the vmdescription does not fit the payload (${e.message}); kept raw`, offset);
          }
        } else if (!this.opts.vmdescLater) {
          this.warn(`no vmdescription entry; ${n} payload bytes kept raw (delimited by the section footer)`, offset);
        }
        const reason = desc ? RAW_MISMATCH : RAW_UNDESCRIBED;
        yield withDepth({ kind: 'raw', offset, length: n, reason, data: bytes }, depth);
        return;
      }
    }
    if (desc) {
      const node = readVmstate(r, desc);
      yield withDepth(
        { kind: 'vmstate', offset, length: r.offset - offset, idstr: info.idstr, instanceId: info.instanceId, node },
        depth,
      );
      return;
    }
    if (this.footers === false) {
      throw r.error(
        'undelimited-section',
        `a vmdescription entry for ${JSON.stringify(info.idstr)} instance ${info.instanceId} (this stream has no section footers to find its end)`,
        'none',
      );
    }
    throw r.error(
      'undelimited-section',
      `QEMU_VM_SECTION_FOOTER for section ${info.sectionId} within ${this.maxRaw} bytes`,
      'none (and no vmdescription entry describes the section)',
    );
  }
}
