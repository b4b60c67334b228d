/**
 * The diff use case: two streams (or vmdescription JSON files) compared, format first (see
 * formats/format-diff.ts), then, for streams, device values and guest pages. Each stream is
 * read once, streaming; per guest page only a 52-bit hash of its last content is kept.
 */
import { readFileSync } from 'node:fs';
import { StreamError } from '../model/errors.js';
import type { MainRecord } from '../model/records.js';
import { vmstateToPy } from '../formats/analyze.js';
import { compareFormats, type FormatDiff, type FormatFacts } from '../formats/format-diff.js';
import type { PyValue } from '../formats/pyjson.js';
import { parseVmDescription } from '../vmstate/vmdesc.js';
import { openSource, openStreamFile, type StreamRequest } from './open.js';

/** What a side holds beyond its format: device values by field path, and page hashes per RAMBlock. */
interface StateFacts {
  values: Map<string, Map<string, string>>;
  /** per block, address -> hash of the page's last content (ZERO_PAGE, or UNKNOWN after an XBZRLE delta or a compressed page) */
  pages: Map<string, Map<number, number>>;
}

/** A device field whose value differs between the two streams. */
export interface ValueChange {
  device: string;
  instanceId: number;
  field: string;
  a: string | undefined;
  b: string | undefined;
}

/** Per RAMBlock: pages sent by one side only, pages equal, pages that differ. */
export interface RamBlockDiff {
  block: string;
  /** pages sent (or zero-filled) on one side only */
  onlyA: number;
  onlyB: number;
  same: number;
  differ: number;
  /** pages whose last content came as an XBZRLE delta or compressed (on either side): not compared */
  notCompared: number;
}

/** What `migstream diff` reports: the format differences, and for two streams their device values and RAM pages. */
export interface DiffResult extends FormatDiff {
  a: string;
  b: string;
  kind: 'streams' | 'vmdescriptions';
  /** device fields whose values differ (streams; devices on both sides) */
  values?: { changed: number; devices: number; first: ValueChange[] };
  ram?: RamBlockDiff[];
  /** a stream that did not decode to its end: compared as far as it went */
  errors: { file: string; message: string }[];
}

const FIRST_VALUES = 20;

function isJsonFile(path: string): boolean {
  const src = openSource(path);
  try {
    const head = new Uint8Array(64);
    const n = src.read(head, 0, head.length, 0);
    const text = Buffer.from(head.subarray(0, n)).toString('latin1').trimStart();
    return text.startsWith('{');
  } finally {
    src.close();
  }
}

/** Leaves of an analyze-style value, by dotted path: "env.regs[2]" -> "0x…". */
function flatten(v: PyValue, path: string, out: Map<string, string>): void {
  if (v instanceof Map) {
    for (const [k, x] of v) flatten(x, path ? `${path}.${k}` : k, out);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => flatten(x, `${path}[${i}]`, out));
  } else if (v !== null && typeof v === 'object') {
    // lazily written values (RAM) never reach device sections
    for (const [k, x] of Object.entries(v)) flatten(x as PyValue, path ? `${path}.${k}` : k, out);
  } else out.set(path, String(v));
}

/** FNV-1a over the page's 32-bit words plus a second multiplicative sum: 52 bits, as a number. */
function pageHash(data: Uint8Array): number {
  let h1 = 0x811c9dc5;
  let h2 = 0;
  const words = data.length >> 2;
  // words assembled from bytes: no view allocated per page, whatever the buffer's alignment
  for (let i = 0; i < words; i++) {
    const b = i * 4;
    const w =
      ((data[b] ?? 0) | ((data[b + 1] ?? 0) << 8) | ((data[b + 2] ?? 0) << 16) | ((data[b + 3] ?? 0) << 24)) >>> 0;
    h1 = Math.imul(h1 ^ w, 0x01000193) >>> 0;
    h2 = (Math.imul(h2, 31) + w) >>> 0;
  }
  for (let i = words * 4; i < data.length; i++) h1 = Math.imul(h1 ^ (data[i] ?? 0), 0x01000193) >>> 0;
  return h1 * 0x100000 + (h2 & 0xfffff);
}
const ZERO_PAGE = -1;
const UNKNOWN = -2;

function readStream(path: string, o: StreamRequest): { format: FormatFacts; state: StateFacts; error?: string } {
  const s = openStreamFile(path, o);
  const format: FormatFacts = { sections: [] };
  const state: StateFacts = { values: new Map(), pages: new Map() };
  let current: { idstr: string; instanceId: number } | undefined;
  const pagesOf = (block: string): Map<number, number> => {
    let m = state.pages.get(block);
    if (!m) state.pages.set(block, (m = new Map<number, number>()));
    return m;
  };
  const add = (rec: MainRecord): void => {
    switch (rec.kind) {
      case 'configuration':
        format.machineType = rec.machineType;
        format.configurationSubsections = rec.subsections.map((x) => ({ name: x.name, version: x.version }));
        break;
      case 'section':
        current = { idstr: rec.idstr, instanceId: rec.instanceId };
        if (rec.section === 'START' || rec.section === 'FULL')
          format.sections?.push({ idstr: rec.idstr, instanceId: rec.instanceId, versionId: rec.versionId });
        break;
      case 'vmstate':
        if (current) {
          const out = new Map<string, string>();
          flatten(vmstateToPy(rec.node), '', out);
          state.values.set(`${current.idstr}\u0000${current.instanceId}`, out);
        }
        break;
      case 'vmdescription':
        format.vmdesc = parseVmDescription(rec.json);
        break;
      case 'ram':
        if (rec.op === 'page') pagesOf(rec.block).set(rec.addr, pageHash(rec.data));
        else if (rec.op === 'zero') pagesOf(rec.block).set(rec.addr, ZERO_PAGE);
        // the content is a delta on (or a deflation of) bytes this reader does not rebuild here
        else if (rec.op === 'xbzrle' || rec.op === 'compress_page') pagesOf(rec.block).set(rec.addr, UNKNOWN);
        break;
      case 'mapped_ram_page':
        pagesOf(rec.block).set(rec.index * rec.data.length, rec.present ? pageHash(rec.data) : ZERO_PAGE);
        break;
      default:
        break;
    }
  };
  try {
    s.decoder.eachRecord(add);
    return { format, state };
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    return { format, state, error: e.message };
  } finally {
    s.close();
  }
}

function compareValues(a: StateFacts, b: StateFacts): NonNullable<DiffResult['values']> {
  const first: ValueChange[] = [];
  let changed = 0;
  let devices = 0;
  for (const [k, va] of a.values) {
    const vb = b.values.get(k);
    if (!vb) continue;
    const [device = '', instance = '0'] = k.split('\u0000');
    let here = 0;
    for (const field of new Set([...va.keys(), ...vb.keys()])) {
      const x = va.get(field);
      const y = vb.get(field);
      if (x === y) continue;
      here++;
      if (first.length < FIRST_VALUES) first.push({ device, instanceId: Number(instance), field, a: x, b: y });
    }
    changed += here;
    if (here) devices++;
  }
  return { changed, devices, first };
}

function compareRam(a: StateFacts, b: StateFacts): RamBlockDiff[] {
  const blocks = [...new Set([...a.pages.keys(), ...b.pages.keys()])];
  return blocks.map((block) => {
    const pa = a.pages.get(block) ?? new Map<number, number>();
    const pb = b.pages.get(block) ?? new Map<number, number>();
    const d: RamBlockDiff = {
      block,
      onlyA: 0,
      onlyB: 0,
      same: 0,
      differ: 0,
      notCompared: 0,
    };
    for (const [addr, h] of pa) {
      const g = pb.get(addr);
      if (g === undefined) d.onlyA++;
      else if (g === UNKNOWN || h === UNKNOWN) d.notCompared++;
      else if (g === h) d.same++;
      else d.differ++;
    }
    for (const addr of pb.keys()) if (!pa.has(addr)) d.onlyB++;
    return d;
  });
}

/** Compare two streams, or two vmdescription JSON files (`migstream diff A B`). */
export function diffFiles(a: string, b: string, o: StreamRequest = {}): DiffResult {
  const jsonA = isJsonFile(a);
  const jsonB = isJsonFile(b);
  if (jsonA || jsonB) {
    // a vmdescription on either side: the format as the descriptions give it
    const desc = (p: string, json: boolean): FormatFacts =>
      json ? { vmdesc: parseVmDescription(readFileSync(p, 'utf8')) } : { vmdesc: readStream(p, o).format.vmdesc };
    return { a, b, kind: 'vmdescriptions', ...compareFormats(desc(a, jsonA), desc(b, jsonB)), errors: [] };
  }
  const ra = readStream(a, o);
  const rb = readStream(b, o);
  const errors = [
    ...(ra.error ? [{ file: a, message: ra.error }] : []),
    ...(rb.error ? [{ file: b, message: rb.error }] : []),
  ];
  return {
    a,
    b,
    kind: 'streams',
    ...compareFormats(ra.format, rb.format),
    values: compareValues(ra.state, rb.state),
    ram: compareRam(ra.state, rb.state),
    errors,
  };
}
