/**
 * analyze-migration.py's `-d state` document, built from Records: section keys
 * "<idstr> (<section id>)" in first-appearance order, VMState fields as that script
 * renders them, RAM as "section sizes" (+ "memory" for --ram hex).
 * Where the script gives up (commands, XBZRLE, undescribed sections), this keeps going.
 */
import type { MainRecord } from '../model/records.js';
import { StreamError } from '../model/errors.js';
import { RAW_MISMATCH, RAW_UNDESCRIBED } from '../codec/decode.js';
import { StreamReader } from '../io/reader.js';
import { BufferSource } from '../io/source.js';
import { readVmstate } from '../vmstate/codec.js';
import { packedElements, type PackedElements, type VmstateElement, type VmstateNode } from '../model/vmstate-nodes.js';
import { DeviceIndex, parseVmDescription } from '../vmstate/vmdesc.js';
import { sectionHandler } from '../../grammar/handlers.js';
import { VfioSectionDump } from './vfio-dump.js';
import { PyJsonBytes, PyLazyObject, PyRendered, pyString, type PyValue } from './pyjson.js';
import { RamPageLog, type RereadableInput } from './ram-page-log.js';
import { HEX_DIGIT_CODES, HexScratch } from './hex-text.js';

export type RamDumpMode = 'sizes' | 'summary' | 'hex';

const SIGNED = new Set([
  'int8',
  'int16',
  'int32',
  'int32 equal',
  'int32 le',
  'int64',
  'int64 equal',
  'uint8 equal',
  'uint16 equal',
]);
const UNSIGNED = new Set(['uint8', 'uint16', 'uint32', 'uint32 equal', 'uint64']);

interface RamBlockSummary {
  pages: number;
  zeroPages: number;
  xbzrlePages: number;
  compressedPages: number;
  bytes: number;
}

class RamSectionDump {
  readonly sizes = new Map<string, PyValue>();
  /** --ram hex: every page, in the script's dict order, its bytes on disk until printed */
  readonly memory: RamPageLog | undefined;
  readonly summary = new Map<string, RamBlockSummary>();
  constructor(
    private readonly mode: RamDumpMode,
    input?: RereadableInput,
  ) {
    if (mode === 'hex') this.memory = new RamPageLog(input);
  }

  add(rec: MainRecord): void {
    if (rec.kind === 'ram_block') {
      this.sizes.set(utf8(rec.idstr), hex16(rec.usedLength));
      if (rec.mappedRam && this.memory) {
        // mapped-ram: the script walks every page slot of the block, in order, and names the
        // slots its bitmap leaves out "Filled with 0x00"; present pages overwrite their slot
        const ps = rec.mappedRam.pageSize;
        for (let i = 0; ps > 0 && i < Math.floor(rec.usedLength / ps); i++)
          this.memory.put(rec.idstr, i * ps, undefined);
      }
      return;
    }
    if (rec.kind === 'mapped_ram_page') {
      if (rec.present) this.count(rec.block).pages++;
      this.memory?.put(rec.block, rec.index * rec.data.length, rec.present ? rec.data : undefined);
      return;
    }
    if (rec.kind !== 'ram') return;
    switch (rec.op) {
      case 'zero':
        this.count(rec.block).zeroPages++;
        this.memory?.put(rec.block, rec.addr, undefined);
        break;
      case 'page': {
        const c = this.count(rec.block);
        c.pages++;
        c.bytes += rec.data.length;
        this.memory?.put(rec.block, rec.addr, rec.data);
        break;
      }
      case 'xbzrle':
        this.count(rec.block).xbzrlePages++;
        this.count(rec.block).bytes += rec.data.length;
        break;
      case 'compress_page':
        this.count(rec.block).compressedPages++;
        this.count(rec.block).bytes += rec.data.length;
        break;
      default:
        break;
    }
  }

  private count(block: string): RamBlockSummary {
    let c = this.summary.get(block);
    if (!c) {
      c = { pages: 0, zeroPages: 0, xbzrlePages: 0, compressedPages: 0, bytes: 0 };
      this.summary.set(block, c);
    }
    return c;
  }

  toPy(): PyValue {
    const out = new Map<string, PyValue>([['section sizes', this.sizes]]);
    const memory = this.memory;
    if (memory) out.set('memory', new PyLazyObject(() => memoryEntries(memory)));
    if (this.mode === 'summary') {
      const s = new Map<string, PyValue>();
      for (const [b, c] of this.summary) {
        s.set(
          utf8(b),
          new Map<string, PyValue>([
            ['normal pages', c.pages],
            ['zero pages', c.zeroPages],
            ['xbzrle pages', c.xbzrlePages],
            ['compressed pages', c.compressedPages],
            ['payload bytes', c.bytes],
          ]),
        );
      }
      out.set('ram summary', s);
    }
    return out;
  }
}

function* memoryEntries(log: RamPageLog): Generator<[string, PyValue]> {
  // a page's hex is ASCII with nothing to escape: written as JSON text's bytes directly (a 12
  // KiB string through the escaper per page was half the time of a --ram hex dump; a string a
  // page at all, 0.67 against 0.55 s for 256 MiB)
  const hex = new HexScratch();
  for (const p of log.pages())
    yield [memKey(p.block, p.addr), p.data ? new PyJsonBytes(hex.quotedBytes(p.data)) : 'Filled with 0x00'];
}

type SectionDump = { idstr: string; instanceId: number; ram?: RamSectionDump; vfio?: VfioSectionDump; value: PyValue };
type PendingRaw = { dump: SectionDump; offset: number; data: Uint8Array };

/** Accumulates the analyze document while records stream by; memory use is per section, not per page (except --ram hex). */
export class AnalyzeDump {
  private sections = new Map<number, SectionDump>();
  private current: SectionDump | undefined;
  /** device sections read before the vmdescription was known (a pipe): decoded when it arrives */
  private pending: PendingRaw[] = [];

  /** `input`: with --ram hex, the input the pages can be read back from (else they are spilled to a file) */
  constructor(
    private readonly ramMode: RamDumpMode = 'sizes',
    private readonly input?: RereadableInput,
  ) {}

  add(rec: MainRecord): void {
    switch (rec.kind) {
      case 'section': {
        const prev = this.sections.get(rec.sectionId);
        if (prev?.vfio) {
          // VFIO's START/PART/END/FULL sections share one id: one entry with every phase
          prev.vfio.section(rec.section);
          this.current = prev;
        } else if (rec.section === 'START' || rec.section === 'FULL') {
          const d: SectionDump = { idstr: rec.idstr, instanceId: rec.instanceId, value: '' };
          const handler = sectionHandler(rec.idstr);
          if (handler.kind === 'vfio') {
            d.vfio = new VfioSectionDump();
            d.vfio.section(rec.section);
          }
          if (handler.kind === 'ram') d.ram = new RamSectionDump(this.ramMode, this.input);
          this.sections.set(rec.sectionId, d);
          this.current = d;
        } else {
          this.current = this.sections.get(rec.sectionId);
        }
        break;
      }
      case 'vmstate':
        if (this.current) this.current.value = vmstateToPy(rec.node, true);
        break;
      case 'raw':
        if (
          this.current &&
          !this.current.ram &&
          (rec.reason === RAW_UNDESCRIBED || rec.reason === RAW_MISMATCH) &&
          !sectionHandler(this.current.idstr).analyzeEmpty
        ) {
          const why =
            rec.reason === RAW_UNDESCRIBED ? 'no vmdescription entry' : 'does not fit its vmdescription entry';
          this.current.value = new Map<string, PyValue>([
            [
              '$raw',
              new Map<string, PyValue>([
                ['offset', '0x' + rec.offset.toString(16)],
                ['length', rec.length],
                ['reason', why],
              ]),
            ],
          ]);
          this.pending.push({ dump: this.current, offset: rec.offset, data: rec.data.slice() });
        }
        break;
      case 'vmdescription':
        this.decodePending(rec.json);
        break;
      case 'vfio_tag':
      case 'vfio_pci_config':
        this.current?.vfio?.add(rec);
        break;
      case 'ram':
      case 'ram_block':
      case 'mapped_ram_page':
        this.current?.ram?.add(rec);
        break;
      default:
        break;
    }
  }

  private decodePending(json: string): void {
    if (!this.pending.length) return;
    let index: DeviceIndex;
    try {
      index = new DeviceIndex(parseVmDescription(json));
    } catch {
      return;
    }
    for (const p of this.pending) {
      const desc = index.take(p.dump.idstr, p.dump.instanceId);
      if (!desc) continue;
      const r = new StreamReader(
        new BufferSource(p.data, '<section>', p.offset),
        Math.max(16, p.data.length),
        p.offset,
      );
      try {
        const node = readVmstate(r, desc);
        if (r.offset === p.offset + p.data.length) p.dump.value = vmstateToPy(node, true);
      } catch (e) {
        if (!(e instanceof StreamError)) throw e;
      }
    }
    this.pending = [];
  }

  /** Removes what --ram hex spilled to disk; after the document was written. */
  close(): void {
    for (const d of this.sections.values()) d.ram?.memory?.close();
  }

  toPy(): Map<string, PyValue> {
    const out = new Map<string, PyValue>();
    for (const [id, d] of this.sections)
      out.set(`${utf8(d.idstr)} (${id})`, d.ram ? d.ram.toPy() : d.vfio ? d.vfio.toPy() : d.value);
    return out;
  }
}

/**
 * A VMState node as analyze-migration.py renders it: repeated names merge into lists. `rendered`:
 * a packed run of integers becomes one PackedNumbers (its text made in one piece when written)
 * instead of a string an element; for the document only (diff reads the values).
 */
export function vmstateToPy(node: VmstateNode, rendered = false): Map<string, PyValue> {
  const out = new Map<string, PyValue>();
  const merged = new Set<string>();
  for (const f of node.fields) {
    const packed = packedElements(f);
    if (packed && !out.has(f.name)) {
      // a run of plain elements: their values straight from the bytes, no view or element each
      const numbers = new PackedNumbers(f.type, f.size, packed);
      out.set(f.name, rendered && numbers.renders ? numbers : numbers.values());
      merged.add(f.name);
      continue;
    }
    for (const el of f.elements) {
      const v = elementToPy(f.type, el, rendered);
      const prev = out.get(f.name);
      if (prev === undefined) out.set(f.name, v);
      else if (merged.has(f.name)) {
        const list = prev instanceof PackedNumbers ? prev.values() : (prev as PyValue[]);
        if (list !== prev) out.set(f.name, list);
        list.push(v);
      } else {
        out.set(f.name, [prev, v]);
        merged.add(f.name);
      }
    }
  }
  for (const s of node.subsections) out.set(s.name, vmstateToPy(s.node, rendered));
  return out;
}

const LINE_FEED = 0x0a;
const COMMA = 0x2c;
const SPACE = 0x20;
const QUOTE = 0x22;
/** The longest " (-N)" a signed value of up to 8 bytes adds, and then some. */
const SIGNED_SUFFIX_ROOM = 24;

/**
 * A packed run of integer elements as the script prints the list: each one "0x" and its bytes in
 * hex (a negative signed one followed by its value), a line each. The text is written straight
 * into one buffer, as pyWrite would indent it at the list's level.
 */
class PackedNumbers extends PyRendered {
  constructor(
    private readonly type: string,
    private readonly size: number,
    private readonly packed: PackedElements,
  ) {
    super();
  }

  /** Integers of one byte or more: the types whose text this writes itself. */
  get renders(): boolean {
    return this.size > 0 && (SIGNED.has(this.type) || UNSIGNED.has(this.type));
  }

  /** The elements' values, as the script's list holds them. */
  values(): PyValue[] {
    const { bytes, count } = this.packed;
    const list = new Array<PyValue>(count);
    for (let i = 0; i < count; i++) list[i] = bytesToPy(this.type, bytes, i * this.size, (i + 1) * this.size);
    return list;
  }

  render(level: number, indent: number): string {
    const { bytes, count } = this.packed;
    if (count === 0) return '[]';
    const size = this.size;
    const signed = SIGNED.has(this.type);
    const pad = indent * (level + 1);
    // per element: a comma, a line break, the indentation, the quoted "0x..." and a signed suffix
    const room = 2 + pad + 4 + 2 * size + (signed ? SIGNED_SUFFIX_ROOM : 0);
    const out = Buffer.allocUnsafe(count * room + indent * level + 4);
    let j = 0;
    out[j++] = 0x5b;
    for (let i = 0; i < count; i++) {
      if (i) out[j++] = COMMA;
      out[j++] = LINE_FEED;
      for (let k = 0; k < pad; k++) out[j++] = SPACE;
      const start = i * size;
      if (signed && (bytes[start] ?? 0) & 0x80) {
        // a negative value: the script's text with its value, as bytesToPy makes it
        j += out.write(pyString(bytesToPy(this.type, bytes, start, start + size) as string), j, 'latin1');
        continue;
      }
      out[j++] = QUOTE;
      out[j++] = 0x30;
      out[j++] = 0x78;
      for (let k = start; k < start + size; k++) {
        const x = bytes[k] ?? 0;
        out[j++] = HEX_DIGIT_CODES[x >> 4] ?? 0;
        out[j++] = HEX_DIGIT_CODES[x & 15] ?? 0;
      }
      out[j++] = QUOTE;
    }
    out[j++] = LINE_FEED;
    for (let k = 0; k < indent * level; k++) out[j++] = SPACE;
    out[j++] = 0x5d;
    return out.toString('latin1', 0, j);
  }
}

function elementToPy(type: string, el: VmstateElement, rendered: boolean): PyValue {
  if (el.kind === 'struct') return vmstateToPy(el.node, rendered);
  if (el.kind === 'capability') return el.name;
  return bytesToPy(type, el.data);
}

/** The value of an element whose bytes are `b[start, end)`. */
function bytesToPy(type: string, b: Uint8Array, start = 0, end = b.length): PyValue {
  const n = end - start;
  if (type === 'bool') return n > 0 && b[start] !== 0;
  if (type === 'nullptr') return 'nullptr';
  if (SIGNED.has(type) || UNSIGNED.has(type)) {
    // the bytes are big-endian: their hex, byte after byte, is the number's (the script pads it to the field's size)
    let text = n ? '0x' : '0x0';
    for (let i = start; i < end; i++) text += BYTE_HEX[b[i] ?? 0] ?? '';
    if (SIGNED.has(type) && n > 0 && (b[start] ?? 0) & 0x80) {
      let u = 0n;
      for (let i = start; i < end; i++) u = (u << 8n) | BigInt(b[i] ?? 0);
      const s = u - (1n << BigInt(n * 8));
      return `${text} (${s})`;
    }
    return text;
  }
  return hexBytes(b.subarray(start, end));
}

/** Two lowercase hex digits per byte value. */
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** "0a ff 00": the script's hex of a buffer. */
function hexBytes(b: Uint8Array): string {
  return b.length ? BUFFER_HEX.quoted(b).slice(1, -1) : '';
}
const BUFFER_HEX = new HexScratch();

function hex16(n: number): string {
  return '0x' + n.toString(16).padStart(16, '0');
}

function memKey(block: string, addr: number): string {
  return `${utf8(block)} (${hex16(addr)})`;
}

/** Names are kept as latin1 (one char per byte); the script decodes them as UTF-8. */
function utf8(latin1: string): string {
  // eslint-disable-next-line no-control-regex -- the ASCII range, NUL included, is the test
  return /^[\x00-\x7f]*$/.test(latin1) ? latin1 : Buffer.from(latin1, 'latin1').toString('utf8');
}
