/**
 * Grammar-aware mutations of a decoded seed stream: each picks a record and breaks one
 * thing QEMU's loader must survive (a bad tag or type byte, a lying length, a truncation),
 * using the grammar's tables for the values it puts in. Pure functions of a PRNG.
 */
import { RamFlag } from '../../grammar/ram.js';
import { MIG_CMD, SectionType } from '../../grammar/savevm.js';
import { VfioTag } from '../../grammar/vfio.js';
import { sameBytes } from '../io/bytes.js';
import type { MainRecord } from '../model/records.js';
import { hex } from '../model/errors.js';
import { Prng } from '../model/prng.js';

export { Prng };

export interface ByteMutation {
  /** what was done, for the report: "lying length: MIG_CMD_PING len 4 -> 65535 @0x1b" */
  what: string;
  bytes: Uint8Array;
}

/**
 * Where a mutant's bytes are built. The fuzzer passes one buffer it reuses from run to run: a
 * fresh copy of the seed per run (387 KB for pc-paused, thousands of runs) kept tens of
 * megabytes of dead copies waiting for the collector. A mutant's bytes are then valid until
 * the next mutation; whoever keeps them copies them.
 */
export interface MutantBuffer {
  /** n bytes to write a mutant into (their contents are not defined) */
  take(n: number): Uint8Array;
}

/** A new array per mutant: bytes the caller may keep. */
export const freshMutants: MutantBuffer = { take: (n) => new Uint8Array(n) };

/** One buffer for every mutant, grown to the largest asked for. */
export class ReusedMutantBuffer implements MutantBuffer {
  private buf = new Uint8Array(0);
  take(n: number): Uint8Array {
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, Math.ceil(this.buf.length * 1.5)));
    return this.buf.subarray(0, n);
  }
}

type Mutator = (
  seed: Uint8Array,
  records: readonly MainRecord[],
  rng: Prng,
  out: MutantBuffer,
) => ByteMutation | undefined;

/** The seed's bytes in a buffer of `out`'s, to be changed. */
function copyOf(seed: Uint8Array, out: MutantBuffer): Uint8Array {
  const b = out.take(seed.length);
  b.set(seed);
  return b;
}

const setBe = (b: Uint8Array, at: number, width: number, v: bigint): void => {
  for (let i = width - 1; i >= 0; i--) {
    b[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
};
/**
 * What the mutators look up in a seed's records, worked out once per seed (a seed of 8,000
 * records is mutated thousands of times): the same lists, in the same order, as filtering
 * the records on every run, so a run's mutation depends on the PRNG alone as before.
 */
const memo = new WeakMap<readonly MainRecord[], Map<string, readonly unknown[]>>();
function cached<T>(records: readonly MainRecord[], key: string, make: () => T[]): readonly T[] {
  let m = memo.get(records);
  if (!m) memo.set(records, (m = new Map<string, readonly unknown[]>()));
  let v = m.get(key) as readonly T[] | undefined;
  if (!v) m.set(key, (v = make()));
  return v;
}
const of = (records: readonly MainRecord[], kinds: MainRecord['kind'][]): readonly MainRecord[] =>
  cached(records, kinds.join(','), () => records.filter((r) => kinds.includes(r.kind)));

function lyingValues(width: number, actual: bigint, rng: Prng): bigint {
  const max = (1n << BigInt(width * 8)) - 1n;
  return rng.pick([0n, 1n, max, max >> 1n, actual + 1n, actual > 0n ? actual - 1n : max, actual * 2n + 7n]) & max;
}

/** Truncate inside or right at the end of a record (the mutant is a view of the seed: nothing writes into mutants). */
const truncate: Mutator = (seed, records, rng) => {
  const r = rng.pick(records);
  const cut = r.offset + rng.below(r.length + 1);
  return { what: `truncation at ${hex(cut)} (inside ${r.kind} @${hex(r.offset)})`, bytes: seed.subarray(0, cut) };
};

/** Replace a VFIO tag with another tag, or an undefined one. */
const badTag: Mutator = (seed, records, rng, out) => {
  const tags = of(records, ['vfio_tag']);
  if (!tags.length) return undefined;
  const t = rng.pick(tags);
  const values = [...Object.values(VfioTag), 0xffffffffef100000n + BigInt(7 + rng.below(9)), BigInt(rng.next())];
  const v = rng.pick(values);
  const b = copyOf(seed, out);
  setBe(b, t.offset, 8, v);
  return { what: `bad tag ${hex(v)} @${hex(t.offset)}`, bytes: b };
};

/** Replace a top-level type byte with another type (or an unknown one). */
const badType: Mutator = (seed, records, rng, out) => {
  const heads = of(records, ['section', 'command', 'section_footer', 'eof']);
  if (!heads.length) return undefined;
  const h = rng.pick(heads);
  const v = rng.pick([...Object.values(SectionType), 0x09, 0x7f, 0xff]);
  const b = copyOf(seed, out);
  b[h.offset] = v;
  return { what: `type byte ${hex(v)} @${hex(h.offset)} (was ${h.kind})`, bytes: b };
};

/** A length (or size, or offset) field of a decoded stream: where it is and how wide. */
export interface LengthField {
  at: number;
  width: number;
  what: string;
}

/**
 * Every length field the fuzzer knows: command len, PACKAGED blob length, DEV_DATA_STATE size,
 * counted strings, RAMBlock used_length and the MEM_SIZE total, mapped-ram header offsets,
 * XBZRLE and COMPRESS_PAGE lengths, the vmdescription length, the machine type length.
 */
export function lengthFields(records: readonly MainRecord[]): LengthField[] {
  const fields: LengthField[] = [];
  for (const r of records) {
    if (r.kind === 'command') fields.push({ at: r.offset + 3, width: 2, what: `${r.name} len` });
    if (r.kind === 'command' && r.fields && 'blobLength' in r.fields)
      fields.push({ at: r.offset + 5, width: 4, what: 'MIG_CMD_PACKAGED blob length' });
    if (r.kind === 'vfio_tag' && r.tag === 'DEV_DATA_STATE')
      fields.push({ at: r.offset + 8, width: 8, what: 'DEV_DATA_STATE size' });
    if (r.kind === 'section' && (r.section === 'START' || r.section === 'FULL'))
      fields.push({ at: r.offset + 5, width: 1, what: 'section idstr length' });
    if (r.kind === 'ram' && r.op === 'mem_size')
      fields.push({ at: r.offset, width: 6, what: 'MEM_SIZE total (its top 48 bits; the flags stay)' });
    if (r.kind === 'ram_block') {
      fields.push({ at: r.offset, width: 1, what: 'RAMBlock idstr length' });
      fields.push({ at: r.offset + 1 + r.idstr.length, width: 8, what: 'RAMBlock used_length' });
      if (r.mappedRam) {
        const h =
          r.offset + 1 + r.idstr.length + 8 + (r.pageSize !== undefined ? 8 : 0) + (r.mrAddr !== undefined ? 8 : 0);
        fields.push({ at: h + 4, width: 8, what: 'MappedRamHeader page_size' });
        fields.push({ at: h + 12, width: 8, what: 'MappedRamHeader bitmap_offset' });
        fields.push({ at: h + 20, width: 8, what: 'MappedRamHeader pages_offset' });
      }
    }
    if (r.kind === 'ram' && r.op === 'xbzrle')
      fields.push({ at: r.offset + r.length - r.data.length - 2, width: 2, what: 'XBZRLE length' });
    if (r.kind === 'ram' && r.op === 'compress_page')
      fields.push({ at: r.offset + r.length - r.data.length - 4, width: 4, what: 'COMPRESS_PAGE length' });
    if (r.kind === 'vmdescription') fields.push({ at: r.offset + 1, width: 4, what: 'vmdescription length' });
    if (r.kind === 'configuration') fields.push({ at: r.offset + 1, width: 4, what: 'machine type length' });
  }
  return fields;
}

export function readBeField(b: Uint8Array, f: LengthField): bigint {
  let v = 0n;
  for (let i = 0; i < f.width; i++) v = (v << 8n) | BigInt(b[f.at + i] ?? 0);
  return v;
}

/** The stream with one field set to a value (cut to the field's width). */
export function withField(seed: Uint8Array, f: LengthField, v: bigint, out = freshMutants): Uint8Array {
  const b = copyOf(seed, out);
  setBe(b, f.at, f.width, v & ((1n << BigInt(f.width * 8)) - 1n));
  return b;
}

/** A length field that lies. */
const lyingLength: Mutator = (seed, records, rng, out) => {
  const fields = cached(records, 'length-fields', () => lengthFields(records));
  if (!fields.length) return undefined;
  const f = rng.pick(fields);
  const actual = readBeField(seed, f);
  const v = lyingValues(f.width, actual, rng);
  return { what: `lying length: ${f.what} ${actual} -> ${v} @${hex(f.at)}`, bytes: withField(seed, f, v, out) };
};

/** RAM record flags no loader expects together (or at all). */
const badRamFlags: Mutator = (seed, records, rng, out) => {
  const ram = of(records, ['ram']);
  if (!ram.length) return undefined;
  const r = rng.pick(ram);
  const flags = Object.values(RamFlag);
  const v = rng.pick(flags) | rng.pick(flags) | (rng.below(4) === 0 ? 0x400 : 0);
  const b = copyOf(seed, out);
  b[r.offset + 6] = ((b[r.offset + 6] ?? 0) & 0xf0) | ((v >> 8) & 0x0f);
  b[r.offset + 7] = v & 0xff;
  return { what: `RAM flags ${hex(v)} @${hex(r.offset)}`, bytes: b };
};

/** A MIG_CMD number from the table (or out of it) on an existing command. */
const badCommand: Mutator = (seed, records, rng, out) => {
  const cmds = of(records, ['command']);
  if (!cmds.length) return undefined;
  const c = rng.pick(cmds);
  const v = rng.pick([...MIG_CMD.map((m) => m.value), 0, 12, 0xffff]);
  const b = copyOf(seed, out);
  setBe(b, c.offset + 1, 2, BigInt(v));
  return { what: `command ${v} @${hex(c.offset)}`, bytes: b };
};

/** The file header (QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION) with one byte changed. */
const badHeader: Mutator = (seed, records, rng, out) => {
  const h = records.find((r) => r.kind === 'file_header');
  if (!h || h.length < 8) return undefined;
  const b = copyOf(seed, out);
  const at = h.offset + rng.below(8);
  b[at] = (b[at] ?? 0) ^ (1 << rng.below(8));
  return { what: `file header byte ${hex(at)} ${hex(seed[at] ?? 0)} -> ${hex(b[at] ?? 0)} @${hex(at)}`, bytes: b };
};

/** A record sent twice: its bytes copied right after it (a replayed section, command or page). */
const duplicateRecord: Mutator = (seed, records, rng, out) => {
  const candidates = cached(records, `duplicable ${seed.length}`, () =>
    records.filter((r) => r.length > 0 && !r.depth && r.offset + r.length <= seed.length),
  );
  if (!candidates.length) return undefined;
  const r = rng.pick(candidates);
  const end = r.offset + r.length;
  const b = out.take(seed.length + r.length);
  b.set(seed.subarray(0, end), 0);
  b.set(seed.subarray(r.offset, end), end);
  b.set(seed.subarray(end), end + r.length);
  return { what: `duplicated ${r.kind} @${hex(r.offset)} (${r.length} bytes)`, bytes: b };
};

/** Bytes flipped at random: what the grammar-aware ones miss. */
const flipBytes: Mutator = (seed, _records, rng, out) => {
  const b = copyOf(seed, out);
  const n = 1 + rng.below(4);
  const at: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = rng.below(b.length);
    b[p] = rng.below(256);
    at.push(hex(p));
  }
  return { what: `bytes changed at ${at.join(', ')}`, bytes: b };
};

export const MUTATORS: readonly { name: string; fn: Mutator }[] = [
  { name: 'truncate', fn: truncate },
  { name: 'bad-tag', fn: badTag },
  { name: 'bad-type', fn: badType },
  { name: 'lying-length', fn: lyingLength },
  { name: 'bad-ram-flags', fn: badRamFlags },
  { name: 'bad-command', fn: badCommand },
  { name: 'bad-header', fn: badHeader },
  { name: 'duplicate-record', fn: duplicateRecord },
  { name: 'flip-bytes', fn: flipBytes },
];

/**
 * One mutation that changes the seed (a mutator that happens to write back what was there is
 * retried). With a reused `out`, the bytes are good until the next call.
 */
export function mutate(
  seed: Uint8Array,
  records: readonly MainRecord[],
  rng: Prng,
  out: MutantBuffer = freshMutants,
): ByteMutation & { mutator: string } {
  for (;;) {
    const m = rng.pick(MUTATORS);
    const res = m.fn(seed, records, rng, out);
    if (res && !sameBytes(res.bytes, seed)) return { ...res, mutator: m.name };
  }
}
