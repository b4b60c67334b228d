import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RULES, type RuleId } from '../grammar/rules.js';
import { generate } from '../src/app/gen.js';
import { encodeToBytes, openMainStream } from '../src/codec/open.js';
import type { MainRecord } from '../src/model/records.js';
import type { VmstateNode } from '../src/model/vmstate-nodes.js';
import { parseVmDescription } from '../src/vmstate/vmdesc.js';
import type { LoadOptions } from '../src/loader/load.js';
import type { Scenario } from '../src/generator/scenario.js';
import { validateCprChannel, validateMain, validateMultifdChannel } from '../src/loader/validate.js';
import type { OpenOptions } from '../src/codec/open.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource } from '../src/io/source.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import type { MultifdRecord } from '../src/model/multifd-records.js';
import { REAL, ROOT } from './helpers.js';
import { configurationNameEnd, withCapabilities } from './bytes.js';
import { profileFromStream, type DestinationProfile } from '../src/loader/profile.js';

/**
 * Every rule of the catalogue (grammar/rules.ts) has a pair: an input that breaks exactly that
 * rule, with the offset, path and channel its diagnostic must name, and a neighbour that
 * differs from it by the one change and breaks nothing. Inputs are real QEMU recordings
 * (fixtures/real) or save-engine streams (fixtures/vfio) with one edit; where an edit has to
 * break a second rule as a consequence (QEMU fails at the first, the second is what a reader
 * of the rest would see), `consequences` names it and says why.
 *
 * Offsets are where the edited bytes are (savevm-main-channel.md layouts; worked-example.md
 * for the pc-paused offsets), or the record the rule is about.
 */

interface Input {
  main: Uint8Array;
  /** a CPR state channel, judged on its own (main is then unused) */
  cpr?: Uint8Array;
  load: LoadOptions;
  open?: OpenOptions;
  multifd?: Uint8Array[];
  returnPath?: Uint8Array;
}

interface Pair {
  clean: Input;
  broken: Input;
  /** where the diagnostic must point */
  offset: number;
  path: string;
  channel?: string;
  /** with offset -1: the diagnostic's offset lies in [from, to) */
  within?: [number, number];
  /** rules the same edit breaks too, each with why */
  consequences?: Partial<Record<RuleId, string>>;
}

// ---- inputs -------------------------------------------------------------------------------

const cache = new Map<string, Uint8Array>();
function real(version: string, name: string): Uint8Array {
  const p = join(REAL, `qemu-${version}`, name);
  let b = cache.get(p);
  if (!b) cache.set(p, (b = new Uint8Array(readFileSync(p))));
  return b;
}
const VFIO = join(ROOT, 'fixtures', 'vfio');
const vfioFile = (name: string): Uint8Array => new Uint8Array(readFileSync(join(VFIO, name)));

function patch(b: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = b.slice();
  out.set(bytes, at);
  return out;
}
function splice(b: Uint8Array, at: number, remove: number, insert: number[] = []): Uint8Array {
  return new Uint8Array([...b.subarray(0, at), ...insert, ...b.subarray(at + remove)]);
}
const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const be16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];

function records(b: Uint8Array): MainRecord[] {
  const s = openMainStream(new BufferSource(b, 'main.mig'), { copyData: true });
  return [...s.records()];
}
function find<K extends MainRecord['kind']>(
  b: Uint8Array,
  kind: K,
  pred: (r: Extract<MainRecord, { kind: K }>) => boolean = () => true,
): Extract<MainRecord, { kind: K }> {
  for (const r of records(b))
    if (r.kind === kind && pred(r as Extract<MainRecord, { kind: K }>)) return r as Extract<MainRecord, { kind: K }>;
  throw new Error(`no ${kind} record`);
}
function channelRecords(b: Uint8Array): MultifdRecord[] {
  return [...decodeMultifdChannel(new StreamReader(new BufferSource(b, 'ch')))];
}

/** A VFIO fixture made by the save engine from its scenario, and the same scenario without its mutations. */
const expectations = JSON.parse(readFileSync(join(VFIO, 'expect.json'), 'utf8')) as Record<
  string,
  { stream?: string; validate: LoadOptions; multifd?: number }
>;
function vfioInput(name: string, load?: LoadOptions): Input {
  const e = expectations[name];
  const base = e.stream ?? name;
  const n = expectations[base].multifd ?? 0;
  return {
    main: vfioFile(`${base}.mig`),
    load: load ?? e.validate,
    multifd: Array.from({ length: n }, (_, i) => vfioFile(`${base}.multifd${i}.bin`)),
  };
}
function unmutated(name: string): Input {
  const scenario = JSON.parse(readFileSync(join(VFIO, `${name}.scenario.json`), 'utf8')) as Scenario;
  const files = generate({ ...scenario, mutations: [] });
  return { main: files.main, load: expectations[name].validate, multifd: files.multifd };
}
/** broken: the bad-* fixture; clean: its scenario without the mutation. */
const vfioMutant = (name: string): { clean: Input; broken: Input } => ({
  clean: unmutated(name),
  broken: vfioInput(name),
});

/** Re-encode a stream with one record changed (the encoder writes what the record says). */
function editRecords(b: Uint8Array, edit: (recs: MainRecord[]) => MainRecord[]): Uint8Array {
  return encodeToBytes(edit(records(b)));
}

const recorded72 = (name: string): Uint8Array => {
  const p = join(ROOT, 'fixtures', 'recorded-7.2', name);
  let b = cache.get(p);
  if (!b) cache.set(p, (b = new Uint8Array(readFileSync(p))));
  return b;
};
/** A compressed multifd set as recorded, and with 16 bytes of 0xff over channel 0's first compressed payload. */
function compressedDataPair(compression: 'zstd' | 'zlib', main: Uint8Array, channel: (i: number) => Uint8Array) {
  const input = (ch0: Uint8Array): Input => ({
    main,
    load: { capabilities: ['multifd'], multifdCompression: compression },
    multifd: [ch0, channel(1)],
  });
  const p = firstPagesPacket(channel(0));
  const payload = channelRecords(channel(0)).find((r) => r.kind === 'multifd_payload' && r.offset > p);
  if (!payload) throw new Error('no payload after the first packet');
  return {
    clean: input(channel(0)),
    broken: input(patch(channel(0), payload.offset, new Array<number>(16).fill(0xff))),
    offset: payload.offset,
    path: `multifd channel 0 > packet @0x${p.toString(16)}`,
    channel: 'channel0',
  };
}

/** The profile of the destination that accepts `b` (validate --profile with the stream itself). */
const profileOf = (b: Uint8Array): DestinationProfile => profileFromStream(new BufferSource(b, 'reference.mig'));

/** pc-paused against its own profile, and against one whose pc.ram is edited: judged at pc.ram's MEM_SIZE entry. */
function pcRamInProfile(edit: (b: { name: string; usedLength: number }) => { name: string; usedLength: number }): Pair {
  const p = profileOf(paused());
  const blocks = (p.ramBlocks ?? []).map((x) => (x.name === 'pc.ram' ? edit(x) : x));
  return {
    clean: P(paused(), { profile: p }),
    broken: P(paused(), { profile: { ...p, ramBlocks: blocks } }),
    offset: find(paused(), 'ram_block', (r) => r.idstr === 'pc.ram').offset,
    path: ram('START'),
  };
}

// The recordings most pairs start from.
const paused = (): Uint8Array => real('11.1', 'pc-paused.mig'); // worked-example.md reads it
const cpr = (): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'fixtures', 'cpr', 'cpr-transfer.cpr')));
const cprInput = (b: Uint8Array): Input => ({ main: new Uint8Array(0), load: {}, cpr: b });
const P = (main: Uint8Array, load: LoadOptions = {}): Input => ({ main, load });
const postcopy = (): Uint8Array => real('11.1', 'pc-postcopy-ram.mig'); // OPEN_RETURN_PATH 0x1b, PING 0x20, ADVISE 0x29
const POSTCOPY: LoadOptions = { capabilities: ['postcopy-ram'] };
const M = { v: '10.0', c: 'pc-multifd-tcp' } as const;
const mfd = (i: number): Uint8Array => real(M.v, `${M.c}.multifd${i}.bin`);
const mfdInput = (ch0: Uint8Array, ch1 = mfd(1), load: LoadOptions = {}): Input => ({
  main: real(M.v, `${M.c}.mig`),
  load: { qemuVersion: M.v, capabilities: ['multifd'], ...load },
  multifd: [ch0, ch1],
});
/** the first RAM packet with normal pages on a channel (multifd packets: 1344 bytes + pages, vfio-and-multifd.md §8.4) */
function firstPagesPacket(b: Uint8Array): number {
  const r = channelRecords(b).find((x) => x.kind === 'multifd_packet' && x.fields.normalPages > 0);
  if (!r) throw new Error('no packet with pages');
  return r.offset;
}
/**
 * Channel 0 with its first RAM packet's pages_alloc set to `less` below its normal_pages, and
 * zero_pages to 0 (so that their own bound, pages_alloc less normal_pages, stays met).
 */
function pagesAllocBelowNormal(less: number): Uint8Array {
  const p = firstPagesPacket(mfd(0));
  const b = mfd(0);
  const normal = new DataView(b.buffer, b.byteOffset).getUint32(p + 16);
  return patch(patch(b, p + 12, be32(normal - less)), p + 32, be32(0));
}
const SA = { v: '10.0', c: 'pc-switchover-ack-tcp' } as const; // return path: PONG(1), SWITCHOVER_ACK, SHUT(0)
const SA_LOAD: LoadOptions = { qemuVersion: '10.0', capabilities: ['return-path', 'switchover-ack'] };
const saInput = (rp: Uint8Array, load: LoadOptions = SA_LOAD): Input => ({
  main: real(SA.v, `${SA.c}.mig`),
  load,
  returnPath: rp,
});
const saRp = (): Uint8Array => real(SA.v, `${SA.c}.main-return-path.bin`);

function libvirtImage(stream: Uint8Array, compressed: number): Uint8Array {
  // libvirt-save-image.md: 16-byte magic, then version, data_len, was_running, compressed, xml_len (LE)
  const xml = Buffer.from('<domain type="kvm"><name>vm</name></domain>\0');
  const head = Buffer.alloc(92);
  head.write('LibvirtQemudSave', 0, 'latin1');
  [2, xml.length, 1, compressed, xml.length].forEach((v, i) => head.writeUInt32LE(v, 16 + 4 * i));
  return new Uint8Array(Buffer.concat([head, xml, stream]));
}

// ---- the pairs ---------------------------------------------------------------------------

const ram = (kind: string, id = 1) => `section ${id} "ram" (${kind})`;

const PAIRS: Record<RuleId, () => Pair> = {
  // decode errors
  'stream/truncated': () => ({
    clean: P(paused()),
    broken: P(paused().subarray(0, 0x2c + 4)),
    offset: 0x2c,
    path: `${ram('START')} > RAM record @0x2c`,
  }),
  'stream/bad-magic': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0, [0x00])),
    offset: 0,
    path: 'file header',
  }),
  'stream/bad-version': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 7, [2])),
    offset: 4,
    path: 'file header',
  }),
  // the record type byte of SWITCHOVER_START (0x4358c) becomes 0x0a, a type QEMU does not know
  'stream/unknown-section-type': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0x4358c, [0x0a])),
    offset: 0x4358c,
    path: '',
  }),
  // the ram END (0x43591) names section 99, which no START opened
  'stream/unknown-section-id': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0x43592, be32(99))),
    offset: 0x43592,
    path: '',
  }),
  // apic's footer (0x4366a, section 6) names section 5: a lower id must fail as well as a higher one
  'stream/footer-mismatch': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0x4366b, be32(5))),
    offset: 0x4366a,
    path: 'section 6 "apic" (FULL)',
  }),
  'stream/missing-footer': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0x4366a, [0x00])),
    offset: 0x4366a,
    path: 'section 6 "apic" (FULL)',
  }),
  // a PACKAGED command (MIG_CMD_PACKAGED, len 4, be32 blob length) whose blob of 3 bytes holds a 5-byte command
  'stream/bad-command': () => {
    const blob = (n: number, inner: number[]) => [0x08, ...be16(7), ...be16(4), ...be32(n), ...inner];
    const openRp = [0x08, ...be16(1), ...be16(0)];
    return {
      clean: P(splice(postcopy(), 0x1b, 5, blob(5, openRp)), POSTCOPY),
      broken: P(splice(postcopy(), 0x1b, 5, blob(3, openRp)), POSTCOPY),
      offset: 0x1b + 9 + 5,
      path: 'MIG_CMD_PACKAGED @0x1b',
    };
  },
  'stream/command-length': () => ({
    clean: P(postcopy(), POSTCOPY),
    broken: P(patch(postcopy(), 0x23, be16(5)), POSTCOPY),
    offset: 0x23,
    path: 'MIG_CMD_PING @0x20',
  }),
  // the first page record (0xca, worked-example.md) names block "qc.ram"
  'stream/bad-ram-record': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0xca + 9, [0x71])),
    offset: 0xca + 8,
    path: `${ram('PART')} > zero record @0xca`,
  }),
  'stream/bad-configuration': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 9, be32(300))),
    offset: 9,
    path: 'QEMU_VM_CONFIGURATION @0x8',
  }),
  // pc-old-format has no section footers; without its vmdescription a device section has no end
  'stream/undelimited-section': () => {
    const old = real('7.2', 'pc-old-format.mig');
    const eof = find(old, 'eof');
    const load = { qemuVersion: '7.2', sendConfiguration: false, sectionFooters: false };
    const first = find(old, 'section', (s) => s.section === 'FULL');
    return {
      clean: P(old, load),
      broken: P(old.subarray(0, eof.offset + 1), load),
      offset: first.offset + first.length,
      path: `section ${first.sectionId} ${JSON.stringify(first.idstr)} (FULL)`,
    };
  },
  // pc-old-format has no footers to fall back on: a subsection marker that is not 0x05 ends the load
  'stream/bad-vmstate': () => {
    const old = real('7.2', 'pc-old-format.mig');
    const load = { qemuVersion: '7.2', sendConfiguration: false, sectionFooters: false };
    const vm = records(old).find(
      (r): r is Extract<MainRecord, { kind: 'vmstate' }> => r.kind === 'vmstate' && r.node.subsections.length > 0,
    );
    if (!vm) throw new Error('no device with a subsection');
    const at = subsectionMarker(vm);
    return {
      clean: P(old, load),
      broken: P(patch(old, at, [0x06]), load),
      offset: at,
      path: `section ${sectionIdOf(old, vm.offset)} ${JSON.stringify(vm.idstr)} (FULL)`,
    };
  },
  // pc-old-format (no footers to fall back on) read with a --vmsd description whose first array field has an array_len of 1.5
  'stream/bad-vmdesc': () => {
    const b = real('7.2', 'pc-old-format.mig');
    const load = { qemuVersion: '7.2', sendConfiguration: false, sectionFooters: false };
    const json = find(b, 'vmdescription').json;
    const own = parseVmDescription(json);
    const lying = parseVmDescription(json.replace(/"array_len": (\d+)/, '"array_len": 1.5'));
    const dev = lying.devices.find((d) => JSON.stringify(d).includes('1.5'))!;
    const sec = find(b, 'section', (r) => r.idstr === dev.name && r.instanceId === dev.instance_id);
    const first = find(b, 'vmstate', (r) => r.idstr === dev.name && r.instanceId === dev.instance_id);
    return {
      clean: { main: b, load, open: { vmdesc: own } },
      broken: { main: b, load, open: { vmdesc: lying } },
      offset: -1,
      within: [first.offset, first.offset + first.length],
      path: `section ${sec.sectionId} ${JSON.stringify(dev.name)} (FULL)`,
    };
  },
  'stream/bad-value': () => ({
    clean: P(libvirtImage(paused(), 0)),
    broken: P(libvirtImage(paused(), 1)),
    offset: 28,
    path: 'libvirt save image header',
  }),
  // the vmdescription's be32 length (after its 0x06 type byte) claims 4 GiB - 1
  'stream/limit': () => {
    const vd = find(paused(), 'vmdescription');
    // --strict: after QEMU_VM_EOF, where QEMU stops reading, a decode error is only a warning otherwise
    const strict = { strict: true };
    return {
      clean: P(paused(), strict),
      broken: P(patch(paused(), vd.offset + 1, be32(0xffffffff)), strict),
      offset: vd.offset + 1,
      path: `vmdescription @0x${vd.offset.toString(16)}`,
    };
  },

  // main channel
  'savevm/configuration-missing': () => ({ ...vfioMutant('bad-configuration-missing'), offset: 8, path: '' }),
  'savevm/configuration-capabilities': () => {
    const b = real('11.1', 'pc-x-ignore-shared.mig');
    return { clean: P(b, { capabilities: ['x-ignore-shared'] }), broken: P(b, {}), offset: 8, path: '' };
  },
  // POSTCOPY_ADVISE (length 0: postcopy-ram off, as the destination has it) once, and twice;
  // each put right after pc-paused's configuration
  'savevm/postcopy-state': () => {
    const b = paused();
    const at = configurationNameEnd(b);
    const advise = [0x08, 0, 3, 0, 0];
    return {
      clean: P(splice(b, at, 0, advise), {}),
      broken: P(splice(b, at, 0, [...advise, ...advise]), {}),
      offset: at + advise.length,
      path: '',
    };
  },
  // a capability every release has (events), and one no release has, in the configuration
  'savevm/unknown-capability': () => ({
    clean: P(withCapabilities(paused(), ['events']), {}),
    broken: P(withCapabilities(paused(), ['bogus']), {}),
    offset: 8,
    path: '',
  }),
  // pc-old-format was recorded with send-section-footer=off on both sides: a destination with the
  // default (on) fails at the end of the first section, where the next record starts
  'savevm/section-footer': () => {
    const old = real('7.2', 'pc-old-format.mig');
    const recs = records(old);
    const first = recs.findIndex((r) => r.kind === 'section');
    const next = recs.slice(first + 1).find((r) => r.kind === 'section' || r.kind === 'command' || r.kind === 'eof');
    const s0 = recs[first];
    if (!next || s0?.kind !== 'section') throw new Error('pc-old-format: no two sections');
    const load = { qemuVersion: '7.2', sendConfiguration: false };
    return {
      clean: P(old, { ...load, sectionFooters: false }),
      broken: P(old, load),
      offset: next.offset,
      path: `section ${s0.sectionId} "${s0.idstr}" (${s0.section})`,
    };
  },
  // "pc-i440fx-11.1" (configuration at 8: type, be32 length, name at 13) becomes "pc i440fx-11.1"
  'savevm/machine-type': () => ({ clean: P(paused()), broken: P(patch(paused(), 15, [0x20])), offset: 13, path: '' }),
  // pc-suppress-vmdesc has no vmdescription: sections are judged against live handlers only
  'savevm/empty-idstr': () => {
    const b = real('10.0', 'pc-suppress-vmdesc.mig');
    const load = { qemuVersion: '10.0' };
    let at = -1;
    let id = -1;
    const broken = editRecords(b, (recs) => {
      const i = recs.findIndex((r) => r.kind === 'section' && r.section === 'FULL');
      const s = recs[i];
      if (s.kind !== 'section') throw new Error('no FULL');
      at = s.offset;
      id = s.sectionId;
      return recs.map((r, j) => (j === i ? { ...s, idstr: '' } : r));
    });
    return { clean: P(b, load), broken: P(broken, load), offset: at + 5, path: `section ${id} "" (FULL)` };
  },
  // timer (FULL at 0x4366f: type, be32 id, len, "timer", be32 instance, be32 version) becomes "timex"
  'savevm/unknown-section': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0x4366f + 10, [0x78])),
    offset: 0x4366f,
    path: 'section 0 "timex" (FULL)',
  }),
  'savevm/section-version': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0x4366f + 18, [3])),
    offset: 0x4366f,
    path: 'section 0 "timer" (FULL)',
  }),
  // POSTCOPY_ADVISE (0x29) gets command number 0x30
  'savevm/unknown-command': () => ({
    clean: P(postcopy(), POSTCOPY),
    broken: P(patch(postcopy(), 0x2a, be16(0x30)), POSTCOPY),
    offset: 0x29,
    path: '',
  }),
  // OPEN_RETURN_PATH (5 bytes at 0x1b) taken out: the PING moves to 0x1b
  'savevm/ping-without-return-path': () => ({
    clean: P(postcopy(), POSTCOPY),
    broken: P(splice(postcopy(), 0x1b, 5), POSTCOPY),
    offset: 0x1b,
    path: '',
  }),
  'savevm/postcopy-advise': () => ({
    clean: P(postcopy(), POSTCOPY),
    broken: P(postcopy(), {}),
    offset: 0x29,
    path: '',
  }),
  // the zero page at 0xca: its be64 address gets 0x10 << 40, far past pc.ram
  'ram/offset': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0xca + 2, [0x10])),
    offset: 0xca,
    path: ram('PART'),
  }),
  // the zero page at 0xda (flags be64, fill byte): fill 1
  // the destination profile is the edit: the stream stays the recording the profile was taken from
  'savevm/machine-type-mismatch': () => ({
    clean: P(paused(), { profile: profileOf(paused()) }),
    broken: P(paused(), { profile: { ...profileOf(paused()), machineType: 'pc-i440fx-11.0' } }),
    offset: 13,
    path: '',
  }),
  // 7.2 pc-validate-uuid (recorded here with the corpus's harness) carries the uuid subsection
  'savevm/uuid': () => {
    const b = recorded72('pc-validate-uuid.mig');
    const load = { profile: profileOf(b) };
    const other = { profile: { ...profileOf(b), uuid: '12345678-9abc-def0-1234-56789abcdef1' } };
    return { clean: P(b, load), broken: P(b, other), offset: 8, path: '' };
  },
  // x86 streams never carry target-page-bits (12 is TARGET_PAGE_BITS_MIN): added as QEMU would for 12
  'savevm/target-page-bits': () => {
    const b = editRecords(paused(), (recs) =>
      recs.map((r) =>
        r.kind === 'configuration'
          ? {
              ...r,
              subsections: [
                { name: 'configuration/target-page-bits', version: 1, fields: { targetPageBits: 12 } },
                ...r.subsections,
              ],
            }
          : r,
      ),
    );
    return {
      clean: P(b, { profile: { ...profileOf(b), targetPageBits: 12 } }),
      broken: P(b, { profile: { ...profileOf(b), targetPageBits: 13 } }),
      offset: 8,
      path: '',
    };
  },
  'ram/unknown-block': () => pcRamInProfile((x) => ({ ...x, name: 'pc.ram0' })),
  'ram/block-length': () => pcRamInProfile((x) => ({ ...x, usedLength: x.usedLength / 2 })),
  // the first COMPRESS_PAGE of 7.2 pc-compress-7.2: its zlib header byte (0x78) becomes 0x79
  'ram/compressed-page': () => {
    const b = real('7.2', 'pc-compress-7.2.mig');
    const x = find(b, 'ram', (r) => r.op === 'compress_page');
    const at = x.offset + x.length - ('data' in x ? x.data.length : 0);
    const load = { capabilities: ['compress'] };
    return {
      clean: P(b, load),
      broken: P(patch(b, at, [(b[at] ?? 0) ^ 1]), load),
      offset: at,
      path: sectionPathAt(b, x.offset),
    };
  },
  'ram/zero-fill': () => ({
    clean: P(paused()),
    broken: P(patch(paused(), 0xda + 8, [1])),
    offset: 0xda + 8,
    path: ram('PART'),
  }),
  // the first XBZRLE page of 10.0 pc-xbzrle: its encoding byte (after flags and block name) becomes 2
  'ram/xbzrle': () => {
    const b = real('10.0', 'pc-xbzrle.mig');
    const x = find(b, 'ram', (r) => r.op === 'xbzrle');
    const at = x.offset + x.length - ('data' in x ? x.data.length : 0) - 3;
    const load = { capabilities: ['xbzrle'] };
    return { clean: P(b, load), broken: P(patch(b, at, [2]), load), offset: at, path: sectionPathAt(b, x.offset) };
  },
  // 10.0 pc-multifd-tcp into a 7.2 destination: RAM_SAVE_FLAG_MULTIFD_FLUSH came in 8.0
  'ram/unknown-flag': () => {
    const b = real('10.0', 'pc-multifd-tcp.mig');
    const flush = find(b, 'ram', (r) => r.op === 'multifd_flush');
    return {
      clean: mfdInput(mfd(0), mfd(1)),
      broken: mfdInput(mfd(0), mfd(1), { qemuVersion: '7.2' }),
      offset: flush.offset,
      path: sectionPathAt(b, flush.offset),
      consequences: { 'savevm/unknown-command': 'the 10.0 stream also sends SWITCHOVER_START, unknown to 7.2' },
    };
  },
  // a subsection marker of a device with subsections becomes 0x06: the bytes no longer fit the description
  'vmstate/description-mismatch': () => {
    const b = paused();
    const vm = records(b).find(
      (r): r is Extract<MainRecord, { kind: 'vmstate' }> => r.kind === 'vmstate' && r.node.subsections.length > 0,
    );
    if (!vm) throw new Error('no device with a subsection');
    const id = sectionIdOf(b, vm.offset);
    return {
      clean: P(b),
      broken: P(patch(b, subsectionMarker(vm), [0x06])),
      offset: vm.offset,
      path: `section ${id} ${JSON.stringify(vm.idstr)} (FULL)`,
    };
  },
  // fw_cfg's "fw_cfg/acpi_mr" rsdp_mr_size (the last field of the section) one byte past the RSDP's page
  // (hw/acpi/utils.c: the RSDP blob's RAMBlock is one page); the neighbour is the page exactly
  'vmstate/fw-cfg-acpi-size': () => {
    const b = paused();
    const vm = records(b).find(
      (r): r is Extract<MainRecord, { kind: 'vmstate' }> => r.kind === 'vmstate' && r.idstr === 'fw_cfg',
    );
    if (!vm) throw new Error('no fw_cfg section');
    const sub = vm.node.subsections.at(-1);
    expect(sub?.name).toBe('fw_cfg/acpi_mr');
    expect(sub?.node.fields.at(-1)?.name).toBe('rsdp_mr_size');
    const at = vm.offset + vm.length - 8;
    return {
      clean: P(patch(b, at, [0, 0, 0, 0, 0, 0, 0x10, 0x00])),
      broken: P(patch(b, at, [0, 0, 0, 0, 0, 0, 0x10, 0x01])),
      offset: at,
      path: `section ${sectionIdOf(b, vm.offset)} "fw_cfg" (FULL)`,
    };
  },
  // the vmdescription cut in the middle of its JSON (reported where the stream ends): QEMU has finished loading at QEMU_VM_EOF
  'savevm/after-eof': () => {
    const vd = find(paused(), 'vmdescription');
    return {
      clean: P(paused()),
      broken: P(paused().subarray(0, vd.offset + 100)),
      offset: vd.offset + 100,
      path: `vmdescription @0x${vd.offset.toString(16)}`,
    };
  },
  'migration/switchover-ack-needs-return-path': () =>
    vfioAt('v2-precopy-switchover-ack-8.1', 'v2-precopy-switchover-ack-8.1@ack-without-rp', () => ({
      offset: 0,
      path: '',
    })),

  // VFIO on the main channel
  'vfio/setup-eos': () => vfioPair('bad-setup-eos'),
  'vfio/config-end-flag': () => vfioPair('bad-config-end-flag'),
  // the device sends its config on the main channel (multifd: false); a destination doing multifd transfer refuses it
  'vfio/config-in-multifd': () => {
    const broken = vfioInput('bad-config-in-multifd');
    const cfg = find(broken.main, 'vfio_tag', (r) => r.tag === 'DEV_CONFIG_STATE');
    return {
      clean: { ...broken, load: { ...broken.load, vfioMultifdTransfer: 'off' } },
      broken,
      offset: cfg.offset,
      path: sectionPathAt(broken.main, cfg.offset),
    };
  },
  'vfio/unknown-tag': () => vfioPair('bad-unknown-tag'),
  'vfio/init-data-sent-without-ack': () =>
    vfioAtTag('v2-precopy-switchover-ack-8.1', 'v2-precopy-switchover-ack-8.1@no-ack', 'DEV_INIT_DATA_SENT'),
  // the replaced END_OF_STATE is approved; the device's own INIT_DATA_SENT after it has nothing left to approve
  'vfio/switchover-ack-count': () => atTag('bad-init-data-twice', 'DEV_INIT_DATA_SENT', 1),
  // OPEN_RETURN_PATH and PING dropped: the last (only) approval fails
  'vfio/switchover-ack-no-return-path': () => atTag('bad-init-data-no-return-path', 'DEV_INIT_DATA_SENT', 0),
  'vfio/load-ready-outside-multifd': () =>
    vfioAtTag('multifd-load-ready-10.1', 'multifd-load-ready-10.1@no-multifd', 'DEV_CONFIG_LOAD_READY', true),
  'vfio/load-ready-disabled': () =>
    vfioAtTag('multifd-load-ready-10.1', 'multifd-load-ready-10.1@after-iter-off', 'DEV_CONFIG_LOAD_READY'),
  'vfio/load-ready-duplicate': () => atTag('bad-load-ready-duplicate', 'DEV_CONFIG_LOAD_READY', 1),
  'vfio/irq-state': () => vfioPair('bad-irq-state'),
  'vfio/pci-version': () => {
    const clean = vfioInput('v2-stop-copy-8.0');
    let at = -1;
    const main = editRecords(clean.main, (recs) =>
      recs.map((r) => {
        if (r.kind !== 'vfio_pci_config') return r;
        at = r.offset;
        return { ...r, pciVersion: 3 };
      }),
    );
    return { clean, broken: { ...clean, main }, offset: at, path: 'section 2 "0000:00:02.0/vfio" (FULL)' };
  },

  // multifd channels (the real 10.0 two-channel set)
  'multifd/init-version': () => ({
    clean: mfdInput(mfd(0)),
    broken: mfdInput(patch(mfd(0), 4, be32(2))),
    offset: 4,
    path: 'MultiFDInit',
    channel: 'channel0',
  }),
  'multifd/init-id': () => ({
    clean: mfdInput(mfd(0)),
    broken: mfdInput(patch(mfd(0), 24, [7])),
    offset: 24,
    path: 'MultiFDInit',
    channel: 'channel0',
    consequences: { 'multifd/channel-missing': 'the channel with id 0 now says 7: no channel 0 connects' },
  }),
  'multifd/init-id-duplicate': () => ({
    clean: mfdInput(mfd(0)),
    broken: mfdInput(mfd(0), mfd(0)),
    offset: 24,
    path: 'MultiFDInit',
    channel: 'channel1',
    consequences: {
      'multifd/packet-num': 'the same channel twice repeats its packet numbers',
      'multifd/channel-missing': 'channel 0 twice: channel 1 never connects',
    },
  }),
  'multifd/channel-missing': () => ({
    clean: mfdInput(mfd(0), mfd(1)),
    broken: { ...mfdInput(mfd(0)), multifd: [mfd(0)] },
    offset: 0,
    path: 'multifd channels',
    channel: 'main',
  }),
  'multifd/channels-not-given': () => ({
    clean: mfdInput(mfd(0), mfd(1)),
    broken: { ...mfdInput(mfd(0)), multifd: [] },
    offset: 0,
    path: 'multifd channels',
  }),
  // 7.2 pc-multifd-zstd-tcp: the first packet with pages says MULTIFD_FLAG_ZSTD
  'multifd/compression-assumed': () => {
    const z = (i: number): Uint8Array => real('7.2', `pc-multifd-zstd-tcp.multifd${i}.bin`);
    const input = (load: LoadOptions): Input => ({
      main: real('7.2', 'pc-multifd-zstd-tcp.mig'),
      load: { capabilities: ['multifd'], ...load },
      multifd: [z(0), z(1)],
    });
    const p = firstPagesPacket(z(0));
    return {
      clean: input({ multifdCompression: 'zstd' }),
      broken: input({}),
      offset: p + 8, // flags: after be32 magic and be32 version (vfio-and-multifd.md §8.4)
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  // 7.2 pc-multifd-zstd-tcp: the first 16 bytes of the first compressed payload of channel 0 set to 0xff
  // (the zstd block header that starts it no longer reads as one)
  'multifd/zstd-data': () =>
    compressedDataPair('zstd', real('7.2', 'pc-multifd-zstd-tcp.mig'), (i) =>
      real('7.2', `pc-multifd-zstd-tcp.multifd${i}.bin`),
    ),
  // fixtures/recorded-7.2/pc-multifd-zlib-tap (recorded here through the tap): the same bytes of its
  // channel 0 (its zlib header no longer reads as one)
  'multifd/zlib-data': () =>
    compressedDataPair('zlib', recorded72('pc-multifd-zlib-tap.mig'), (i) =>
      recorded72(`pc-multifd-zlib-tap.multifd${i}.bin`),
    ),
  'multifd/init-uuid': () => ({
    clean: mfdInput(mfd(0)),
    broken: mfdInput(mfd(0), patch(mfd(1), 8, [1])),
    offset: 8,
    path: 'MultiFDInit',
    channel: 'channel1',
  }),
  'multifd/packet-version': () => {
    const p = firstPagesPacket(mfd(0));
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), p + 4, be32(2))),
      offset: p + 4,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  'multifd/compression': () => {
    const p = firstPagesPacket(mfd(0));
    const none = { multifdCompression: 'none' };
    return {
      clean: mfdInput(mfd(0), mfd(1), none),
      broken: mfdInput(patch(mfd(0), p + 8, be32(4)), mfd(1), none),
      offset: p + 8,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  'multifd/pages-alloc': () => {
    const p = firstPagesPacket(mfd(0));
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), p + 12, be32(256))),
      offset: p + 12,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  'multifd/normal-pages': () => {
    const p = firstPagesPacket(mfd(0));
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), p + 12, be32(0))),
      offset: p + 16,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
      consequences: { 'multifd/zero-pages': 'zero_pages is bounded by pages_alloc too' },
    };
  },
  'multifd/zero-pages': () => {
    const p = firstPagesPacket(mfd(0));
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), p + 32, be32(0x10000))),
      offset: p + 32,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  'multifd/unknown-ramblock': () => {
    const p = firstPagesPacket(mfd(0));
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), p + 64, [0x71])),
      offset: p + 64,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  'multifd/offset': () => {
    const p = firstPagesPacket(mfd(0));
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), p + 320, [0, 0, 0, 1, 0, 0, 0, 0])),
      offset: p + 320,
      path: `multifd channel 0 > packet @0x${p.toString(16)}`,
      channel: 'channel0',
    };
  },
  // the first packet's SYNC flag cleared: channel 0 has one SYNC less than the main channel's flushes
  // reported where channel 0 ends, when its SYNCs are counted
  'multifd/sync-count': () => ({
    clean: mfdInput(mfd(0)),
    broken: mfdInput(patch(mfd(0), 64 + 8, be32(0))),
    offset: mfd(0).length,
    path: 'multifd channel 0',
    channel: 'channel0',
  }),
  // the second packet on channel 0 repeats the first one's packet_num (be64 at +24)
  'multifd/packet-num': () => {
    const packets = channelRecords(mfd(0)).filter((r) => r.kind === 'multifd_packet' && r.fields.normalPages > 0);
    const [a, b] = [packets[0].offset, packets[1].offset];
    return {
      clean: mfdInput(mfd(0)),
      broken: mfdInput(patch(mfd(0), b + 24, [...mfd(0).subarray(a + 24, a + 32)])),
      offset: b + 24,
      path: `multifd channel 0 > packet @0x${b.toString(16)}`,
      channel: 'channel0',
    };
  },
  'multifd/device-state-sync': () => vfioPair('bad-multifd-sync-device-state'),
  'multifd/device-state-empty': () => deviceStateEdit('empty'),
  'multifd/device-state-idstr': () => vfioPair('bad-multifd-unterminated-idstr'),
  'multifd/device-state-unknown': () => ({
    ...vfioPair('bad-multifd-unknown-device'),
    consequences: { 'vfio/buffer-missing': "the renamed device's buffer never reaches it: its load thread waits" },
  }),
  'vfio/device-state-not-multifd': () => vfioAt('multifd-10.0', 'multifd-10.0@transfer-off', firstDeviceState),
  'vfio/buffer-too-short': () => deviceStateEdit('short'),
  'vfio/buffer-version': () => ({
    ...vfioPair('bad-multifd-buffer-version'),
    consequences: { 'vfio/buffer-missing': 'QEMU stops at the bad buffer, which then is missing' },
  }),
  'vfio/buffer-index-invalid': () => ({
    ...vfioPair('bad-multifd-invalid-idx'),
    consequences: { 'vfio/buffer-missing': 'the buffer with the invalid idx leaves its own idx unfilled' },
  }),
  // buffer 1 copied to the end of the other channel: the copy's idx is the one already filled
  'vfio/buffer-duplicate': () => {
    const pair = vfioMutant('bad-multifd-duplicate-idx');
    const bufs = vfioBuffers(pair.broken);
    const copy = bufs.filter((b) => b.idx === 1).pop()!;
    const packet = channelRecords(pair.broken.multifd![copy.channel])
      .filter((r) => r.kind === 'multifd_device_state' && r.offset < copy.offset)
      .pop()!;
    return {
      ...pair,
      offset: copy.offset + 4,
      channel: `channel${copy.channel}`,
      path: `multifd channel ${copy.channel} > packet @0x${packet.offset.toString(16)}`,
    };
  },
  'vfio/buffer-missing': () => deviceLevel('bad-multifd-missing-idx'),
  'vfio/config-buffer-missing': () => deviceStateEdit('no-config'),
  'vfio/switchover-start-missing': () => deviceLevel('bad-multifd-no-switchover-start'),
  'vfio/load-ready-missing': () =>
    vfioAt('multifd-10.0', 'multifd-10.0@after-iter-on', (i) => ({
      ...firstDeviceState(i),
      path: 'multifd device state of 0000:00:02.0/vfio',
    })),
  // the config buffer takes idx 0: every other buffer comes after it; the first one read is reported
  'vfio/buffer-after-config': () => {
    const pair = vfioMutant('bad-multifd-config-not-last');
    const bufs = vfioBuffers(pair.broken);
    const cfg = bufs.find((b) => b.config)!;
    const after = bufs.filter((b) => b.idx > cfg.idx)[0];
    // the location of a buffer is its data, after the 12-byte header
    return {
      ...pair,
      offset: after.offset + 12,
      channel: `channel${after.channel}`,
      path: 'multifd device state of 0000:00:02.0/vfio',
    };
  },
  'vfio/config-buffer-flag': () => vfioPair('bad-multifd-config-flag'),

  // the return path: the real 10.0 switchover-ack capture, SWITCHOVER_ACK @0 (type, len 0),
  // PONG(1) @4 (type, len 4, value), SHUT(0) @12 (type, len 4, status)
  'return-path/pong-value': () => ({
    clean: saInput(saRp()),
    broken: saInput(patch(saRp(), 11, [2])),
    offset: 4,
    path: 'return path @0x4',
    channel: 'return-path',
  }),
  'return-path/pong-without-ping': () => ({
    clean: saInput(saRp()),
    broken: saInput(splice(saRp(), 12, 0, [...saRp().subarray(4, 12)])),
    offset: 12,
    path: 'return path @0xc',
    channel: 'return-path',
  }),
  'return-path/switchover-ack-unexpected': () => ({
    clean: saInput(saRp()),
    broken: saInput(saRp(), { ...SA_LOAD, capabilities: ['return-path'] }),
    offset: 0,
    path: 'return path @0x0',
    channel: 'return-path',
  }),
  'return-path/shut-not-last': () => {
    const rp = saRp();
    return {
      clean: saInput(rp),
      broken: saInput(new Uint8Array([...rp.subarray(0, 4), ...rp.subarray(12, 20), ...rp.subarray(4, 12)])),
      offset: 12,
      path: 'return path @0xc',
      channel: 'return-path',
    };
  },
  'return-path/shut-error': () => ({
    clean: saInput(saRp()),
    broken: saInput(patch(saRp(), 19, [1])),
    offset: 12,
    path: 'return path @0xc',
    channel: 'return-path',
  }),
  'return-path/shut-missing': () => ({
    clean: saInput(saRp()),
    broken: saInput(saRp().subarray(0, 12)),
    offset: 0,
    path: 'return path @0x0',
    channel: 'return-path',
  }),
  // MIG_RP_MSG_REQ_PAGES (4, len 12: be64 start, be32 length) before SHUT, without postcopy-ram
  'return-path/req-pages': () => {
    const rp = saRp();
    const at = rp.length - 8;
    return {
      clean: saInput(rp),
      broken: saInput(splice(rp, at, 0, [...be16(4), ...be16(12), 0, 0, 0, 0, 0, 0, 0, 0, ...be32(4096)])),
      offset: at,
      path: `return path @0x${at.toString(16)}`,
      channel: 'return-path',
    };
  },
  // the CPR state channel: fixtures/cpr/cpr-transfer.cpr (test/cpr.test.ts reads it byte by
  // byte): header @0, then "tap" 1 @8 (more byte, be32 namelen 4 @9, "tap\0" @13, be32 id @17,
  // the descriptor's byte " " @21), "tap" 0 @22, ..., the list's 0 byte @74
  'cpr/fd-name': () => ({
    clean: cprInput(cpr()),
    broken: cprInput(patch(cpr(), 16, [0x58])),
    offset: 13,
    path: 'CPR state > cpr fd 0 @0x8',
    channel: 'cpr',
  }),
  'cpr/fd-byte': () => ({
    clean: cprInput(cpr()),
    broken: cprInput(patch(cpr(), 21, [0])),
    offset: 21,
    path: 'CPR state > cpr fd 0 @0x8',
    channel: 'cpr',
  }),
  'cpr/duplicate-fd': () => ({
    clean: cprInput(cpr()),
    broken: cprInput(patch(cpr(), 17, be32(0))),
    offset: 22,
    path: 'CPR state > cpr fd 1 @0x16',
    channel: 'cpr',
  }),
  'cpr/trailing-bytes': () => ({
    clean: cprInput(cpr()),
    broken: cprInput(splice(cpr(), 75, 0, [1, 2, 3])),
    offset: 75,
    path: 'CPR state',
    channel: 'cpr',
  }),
  'return-path/unknown-message': () => {
    const rp = saRp();
    const at = rp.length - 8;
    return {
      clean: saInput(rp),
      broken: saInput(splice(rp, at, 0, [...be16(0x63), ...be16(0)])),
      offset: at,
      path: `return path @0x${at.toString(16)}`,
      channel: 'return-path',
    };
  },
};

// ---- helpers for the pairs above ------------------------------------------------------------

/** `section N "idstr" (KIND)` of the section a main-channel offset is in. */
function sectionPathAt(b: Uint8Array, offset: number): string {
  let path = '';
  for (const r of records(b)) {
    if (r.offset > offset) break;
    if (r.kind === 'section') path = `section ${r.sectionId} ${JSON.stringify(r.idstr)} (${r.section})`;
  }
  return path;
}

function sectionIdOf(b: Uint8Array, offset: number): number {
  let id = -1;
  for (const r of records(b)) {
    if (r.offset > offset) break;
    if (r.kind === 'section') id = r.sectionId;
  }
  return id;
}

/**
 * The absolute offset of the first 0x05 subsection marker of a device payload: after all its
 * fields (savevm-main-channel.md: fields, then each subsection as 0x05, counted name, be32 version, fields).
 */
function subsectionMarker(vm: Extract<MainRecord, { kind: 'vmstate' }>): number {
  return vm.offset + vm.node.fields.reduce((n, f) => n + fieldBytes(f), 0);
}
function nodeBytes(node: VmstateNode): number {
  return (
    node.fields.reduce((n, f) => n + fieldBytes(f), 0) +
    node.subsections.reduce((n, sub) => n + 1 + 1 + sub.name.length + 4 + nodeBytes(sub.node), 0)
  );
}
function fieldBytes(f: VmstateNode['fields'][number]): number {
  return f.elements.reduce(
    (n, e) => n + (e.kind === 'bytes' ? e.data.length : e.kind === 'struct' ? nodeBytes(e.node) : 1 + e.name.length),
    0,
  );
}

/** The first byte where two captures differ (-1: none). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/**
 * A bad-* fixture and its scenario without the mutation: the diagnostic must point at the
 * first byte the mutation changed, in the channel it changed (the main channel when the
 * mutation is there), with the path of the section or packet holding it.
 */
function vfioPair(name: string): Pair {
  const pair = vfioMutant(name);
  const main = firstDiff(pair.clean.main, pair.broken.main);
  if (main >= 0)
    return {
      ...pair,
      offset: -1,
      within: [recordStartAt(pair.broken.main, main), main + 1],
      path: sectionPathAt(pair.broken.main, main),
    };
  const chans = pair.broken.multifd ?? [];
  for (let i = 0; i < chans.length; i++) {
    const at = firstDiff(pair.clean.multifd![i], chans[i]);
    if (at >= 0)
      return {
        ...pair,
        offset: -1,
        within: [packetStartAt(chans[i], at), at + 1],
        path: packetPathAt(chans[i], i, at),
        channel: `channel${i}`,
      };
  }
  throw new Error(`${name}: the mutation changed nothing`);
}
/** The start of the main-channel record holding an offset. */
function recordStartAt(b: Uint8Array, offset: number): number {
  let at = 0;
  for (const r of records(b)) {
    if (r.offset > offset) break;
    at = r.offset;
  }
  return at;
}
function packetStartAt(b: Uint8Array, offset: number): number {
  let at = 0;
  for (const r of channelRecords(b)) {
    if (r.offset > offset) break;
    if (r.kind === 'multifd_packet' || r.kind === 'multifd_device_state') at = r.offset;
  }
  return at;
}
/** `multifd channel N > packet @0x...` of the packet a channel offset is in. */
function packetPathAt(b: Uint8Array, id: number, offset: number): string {
  let at = 0;
  for (const r of channelRecords(b)) {
    if (r.offset > offset) break;
    if (r.kind === 'multifd_packet' || r.kind === 'multifd_device_state') at = r.offset;
  }
  return `multifd channel ${id} > packet @0x${at.toString(16)}`;
}
/** The same stream, two sets of destination settings: the diagnostic is about the first record the settings make illegal. */
function vfioAt(
  cleanKey: string,
  brokenKey: string,
  where: (b: Input) => { offset: number; path: string; channel?: string },
): Pair {
  const broken = vfioInput(brokenKey);
  return { clean: vfioInput(cleanKey), broken, ...where(broken) };
}
function vfioAtTag(cleanKey: string, brokenKey: string, tag: string, noMultifd = false): Pair {
  const broken = vfioInput(brokenKey);
  if (noMultifd) broken.multifd = [];
  const clean = vfioInput(cleanKey);
  const t = find(broken.main, 'vfio_tag', (r) => r.tag === tag);
  return { clean, broken, offset: t.offset, path: sectionPathAt(broken.main, t.offset) };
}
/** The first device-state packet of the channels. */
function firstDeviceState(i: Input): { offset: number; path: string; channel: string } {
  for (const [n, b] of (i.multifd ?? []).entries()) {
    const r = channelRecords(b).find((x) => x.kind === 'multifd_device_state');
    if (r)
      return {
        offset: r.offset,
        path: `multifd channel ${n} > packet @0x${r.offset.toString(16)}`,
        channel: `channel${n}`,
      };
  }
  throw new Error('no device-state packet');
}
/**
 * Rules about a device's whole buffer set (QEMU waits forever: nothing on the wire is wrong)
 * point at the device's first device-state packet, by packet number order of the channels.
 */
function deviceLevel(name: string, key = '0000:00:02.0/vfio'): Pair {
  const pair = vfioMutant(name);
  const first = firstDeviceState(pair.broken);
  return { ...pair, offset: first.offset, channel: first.channel, path: `multifd device state of ${key}` };
}
/** The nth VFIO tag of a name in the broken stream is the one the rule is about. */
function atTag(name: string, tag: string, nth: number): Pair {
  const pair = vfioMutant(name);
  const tags = records(pair.broken.main).filter((r) => r.kind === 'vfio_tag' && r.tag === tag);
  const t = tags[nth];
  if (!t) throw new Error(`${name}: no ${tag} #${nth}`);
  return { ...pair, offset: t.offset, path: sectionPathAt(pair.broken.main, t.offset) };
}
/** VFIO buffer headers (VFIODeviceStatePacket: be32 version, idx, flags) of every channel. */
function vfioBuffers(i: Input): { channel: number; offset: number; idx: number; config: boolean }[] {
  return (i.multifd ?? []).flatMap((b, channel) =>
    channelRecords(b).flatMap((r) =>
      r.kind === 'multifd_vfio_buffer' ? [{ channel, offset: r.offset, idx: r.idx, config: (r.flags & 1) === 1 }] : [],
    ),
  );
}

/** Multifd device-state edits that no scenario mutation makes: re-encoded channel records. */
function deviceStateEdit(what: 'empty' | 'short' | 'no-config', shortBytes = 8): Pair {
  const clean = vfioInput('multifd-10.0');
  const chans = clean.multifd!.map(channelRecords);
  let offset = -1;
  let channelIndex = -1;
  const out = chans.map((recs, ci) => {
    const res: MultifdRecord[] = [];
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i];
      if (r.kind === 'multifd_device_state' && offset < 0 && (what !== 'no-config' || isConfigBuffer(recs, i))) {
        offset = r.offset;
        channelIndex = ci;
        const payload = recs
          .slice(i + 1)
          .findIndex((x) => x.kind === 'multifd_device_state' || x.kind === 'multifd_packet');
        const body = payload < 0 ? recs.slice(i + 1) : recs.slice(i + 1, i + 1 + payload);
        i += body.length;
        if (what === 'no-config') continue; // the whole config buffer dropped
        const keep = what === 'empty' ? new Uint8Array(0) : concat(body).subarray(0, shortBytes);
        res.push({ ...r, fields: { ...r.fields, nextPacketSize: keep.length } });
        if (keep.length) res.push({ kind: 'multifd_payload', offset: 0, length: keep.length, data: keep });
        continue;
      }
      res.push(r);
    }
    return encodeToBytes(res);
  });
  const broken = { ...clean, multifd: out };
  // a device without its config buffer: judged at its first device-state packet (deviceLevel)
  if (what === 'no-config')
    return { clean, broken, ...firstDeviceState(broken), path: 'multifd device state of 0000:00:02.0/vfio' };
  // MultiFDPacketDeviceState_t (vfio-and-multifd.md §8.7): 12-byte header, idstr[256], be32
  // instance_id, be32 next_packet_size at +272; the buffer follows the 276-byte packet
  return {
    clean,
    broken,
    offset: what === 'empty' ? offset + 272 : offset + 276,
    path: `multifd channel ${channelIndex} > packet @0x${offset.toString(16)}`,
    channel: `channel${channelIndex}`,
    consequences: { 'vfio/buffer-missing': 'the buffer that was cut is missing to the load thread' },
  };
}
function isConfigBuffer(recs: MultifdRecord[], i: number): boolean {
  const next = recs[i + 1];
  return next?.kind === 'multifd_vfio_buffer' && (next.flags & 1) === 1;
}
function concat(recs: MultifdRecord[]): Uint8Array {
  return new Uint8Array(Buffer.concat(recs.map((r) => Buffer.from(encodeToBytes([r])))));
}

function validateInput(i: Input) {
  if (i.cpr) return validateCprChannel({ name: 'cpr', source: new BufferSource(i.cpr, 'cpr') });
  return validateMain(new BufferSource(i.main, 'main.mig'), i.load, i.open ?? {}, {
    multifd: (i.multifd ?? []).map((b, n) => ({ name: `channel${n}`, source: new BufferSource(b, `channel${n}`) })),
    returnPath: i.returnPath
      ? { name: 'return-path', source: new BufferSource(i.returnPath, 'return-path') }
      : undefined,
  });
}

// ---- the test -----------------------------------------------------------------------------

describe('every rule of the catalogue has a breaking input and a clean neighbour', () => {
  it('the catalogue and the pairs name the same rules', () => {
    expect(Object.keys(PAIRS).sort()).toEqual(RULES.map((r) => r.id).sort());
  });

  for (const spec of RULES) {
    it(spec.id, () => {
      const make = PAIRS[spec.id];
      expect(make, `no pair for ${spec.id}`).toBeDefined();
      const pair = make();
      const clean = validateInput(pair.clean);
      expect(
        clean.diagnostics.map((d) => `${d.rule} @${d.offset}: ${d.message}`),
        'the clean neighbour breaks nothing',
      ).toEqual([]);
      expect(clean.valid).toBe(true);

      const broken = validateInput(pair.broken);
      const allowed = new Set<string>([spec.id, ...Object.keys(pair.consequences ?? {})]);
      expect(
        [...new Set(broken.diagnostics.map((d) => d.rule))].filter((r) => !allowed.has(r)),
        'no other rule is broken',
      ).toEqual([]);
      const d = broken.diagnostics.find((x) => x.rule === spec.id);
      expect(d, `${spec.id} is reported`).toBeDefined();
      expect(d!.severity).toBe(spec.severity);
      expect(broken.valid).toBe(spec.severity === 'warning' && allowed.size === 1);
      if (pair.offset >= 0) expect(d!.offset).toBe(pair.offset);
      else {
        expect(pair.within, 'a pair without an offset gives a range').toBeDefined();
        expect(d!.offset).toBeGreaterThanOrEqual(pair.within![0]);
        expect(d!.offset).toBeLessThan(pair.within![1]);
      }
      expect(d!.path).toBe(pair.path);
      expect(d!.channel).toBe(pair.channel);
    });
  }
});

/**
 * The edges of the rules: each case is one input with the exact set of rules it breaks (none for
 * the ones a rule must let through) and, where one is named, the offset of the first finding.
 */
interface EdgeCase {
  name: string;
  input: () => Input;
  rules: RuleId[];
  offset?: () => number;
}

const withScenario = (name: string, edit: (s: Scenario) => Scenario, load: LoadOptions): Input => {
  const scenario = JSON.parse(readFileSync(join(VFIO, `${name}.scenario.json`), 'utf8')) as Scenario;
  const files = generate(edit(scenario));
  return { main: files.main, load, multifd: files.multifd };
};
const pciConfig = (b: Uint8Array) => find(b, 'vfio_pci_config');

const EDGES: EdgeCase[] = [
  {
    // worked-example.md: pc.ram's used_length is 0x2000000; a page at exactly that offset is past its end
    name: 'ram/offset: a page at used_length is outside, one page below is inside',
    input: () => P(patch(paused(), 0xca, [0, 0, 0, 0, 0x02, 0, 0, 0x02])),
    rules: ['ram/offset'],
    offset: () => 0xca,
  },
  {
    name: 'ram/offset: the last page of the block is inside',
    input: () => P(patch(paused(), 0xca, [0, 0, 0, 0, 0x01, 0xff, 0xf0, 0x02])),
    rules: [],
  },
  // (pc-paused 11.1 sends SWITCHOVER_START, which destinations before 10.0 do not know)
  {
    name: 'ram/zero-fill: an 8.1 destination ignores the fill byte (the check came in 8.2)',
    input: () => P(patch(paused(), 0xda + 8, [1]), { qemuVersion: '8.1' }),
    rules: ['savevm/unknown-command'],
  },
  {
    name: 'ram/zero-fill: 8.2 checks it',
    input: () => P(patch(paused(), 0xda + 8, [1]), { qemuVersion: '8.2' }),
    rules: ['ram/zero-fill', 'savevm/unknown-command'],
    offset: () => 0xda + 8,
  },
  // the ram START (0x1b): type, be32 id, len 3, "ram", be32 instance, be32 version at 0x28
  {
    name: "savevm/section-version: ram v5 is above the destination's v4",
    input: () => P(patch(paused(), 0x2b, [5])),
    rules: ['savevm/section-version'],
    offset: () => 0x1b,
  },
  {
    name: "savevm/section-version: VFIO v2 is above the destination's v1",
    input: () => {
      const i = vfioInput('v2-stop-copy-8.0');
      const s = find(i.main, 'section', (r) => r.section === 'START' && r.idstr.endsWith('/vfio'));
      return { ...i, main: patch(i.main, s.offset + s.length - 1, [2]) };
    },
    rules: ['savevm/section-version'],
  },
  {
    name: 'savevm/configuration-capabilities: on in the destination only',
    input: () => P(paused(), { capabilities: ['x-ignore-shared'] }),
    // such a destination reads an mr_addr after each used_length, so it misreads the RAMBlocks too
    rules: ['savevm/configuration-capabilities', 'stream/bad-value'],
    offset: () => 8,
  },
  {
    name: 'savevm/section-footer: footers sent to a destination with send-section-footer off',
    input: () => P(paused(), { sectionFooters: false }),
    rules: ['savevm/section-footer'],
    offset: () => find(paused(), 'section_footer').offset,
  },
  {
    name: 'savevm/section-footer: a profile taken from a footerless stream expects no footers',
    input: () => {
      const old = real('7.2', 'pc-old-format.mig');
      return P(old, { qemuVersion: '7.2', profile: profileOf(old) });
    },
    rules: [],
  },
  {
    name: 'savevm/postcopy-advise: ADVISE without page sizes (len 0) with postcopy-ram on',
    input: () => P(splice(postcopy(), 0x29, 21, [0x08, ...be16(3), ...be16(0)]), POSTCOPY),
    rules: ['savevm/postcopy-advise'],
    offset: () => 0x29,
  },
  {
    name: 'savevm/postcopy-advise: ADVISE without page sizes and postcopy-ram off is fine',
    input: () => P(splice(postcopy(), 0x29, 21, [0x08, ...be16(3), ...be16(0)])),
    rules: [],
  },
  {
    name: 'savevm/unknown-command: SWITCHOVER_START into a 9.2 destination',
    input: () => P(paused(), { qemuVersion: '9.2' }),
    rules: ['savevm/unknown-command'],
    offset: () => 0x4358c,
  },
  {
    name: 'savevm/unknown-command: SWITCHOVER_START is known from 10.0',
    input: () => P(paused(), { qemuVersion: '10.0' }),
    rules: [],
  },
  {
    name: 'vfio/setup-eos: the START section ends right after DEV_SETUP_STATE',
    input: () =>
      withScenario(
        'v2-stop-copy-8.0',
        (s) => ({ ...s, mutations: [{ op: 'drop', match: { kind: 'vfio_tag', tag: 'END_OF_STATE', nth: 0 } }] }),
        { qemuVersion: '8.0' },
      ),
    // as in vfio_load_state, the footer's bytes are read as the next tag: not END_OF_STATE; then the footer is missing
    rules: ['vfio/setup-eos', 'stream/missing-footer'],
    // where the START's footer was, less the 8 bytes of the dropped END_OF_STATE
    offset: () => find(vfioInput('v2-stop-copy-8.0').main, 'section_footer', (r) => r.sectionId === 2).offset - 8,
  },
  {
    name: 'vfio/config-end-flag: the FULL section ends right after the config',
    input: () =>
      withScenario(
        'v2-stop-copy-8.0',
        (s) => ({
          ...s,
          mutations: [{ op: 'drop', match: { kind: 'vfio_tag', tag: 'END_OF_STATE', section: 'FULL' } }],
        }),
        { qemuVersion: '8.0' },
      ),
    rules: ['vfio/config-end-flag', 'stream/missing-footer'],
  },
  {
    name: 'vfio/config-in-multifd: x-migration-multifd-transfer=on without the multifd capability',
    input: () => ({ ...vfioInput('v2-stop-copy-8.0'), load: { qemuVersion: '10.0', vfioMultifdTransfer: 'on' } }),
    rules: ['vfio/config-in-multifd'],
  },
  // (the 10.0 stream's SWITCHOVER_START is unknown to 9.2)
  {
    name: 'vfio/config-in-multifd: transfer auto before 10.0 is off',
    input: () => ({ ...vfioInput('bad-config-in-multifd'), load: { qemuVersion: '9.2', capabilities: ['multifd'] } }),
    rules: ['savevm/unknown-command'],
  },
  {
    // irq state: be32 each after the PCI config (vfio-and-multifd.md §6)
    name: 'vfio/irq-state: the second irq state word',
    input: () => {
      const i = vfioInput('v2-stop-copy-8.0');
      return {
        ...i,
        main: editRecords(i.main, (recs) =>
          recs.map((r) => (r.kind === 'vfio_pci_config' ? { ...r, irqState: [0, 7, 0, 0] } : r)),
        ),
      };
    },
    rules: ['vfio/irq-state'],
    offset: () => {
      const c = pciConfig(vfioInput('v2-stop-copy-8.0').main);
      return c.offset + 4 + c.config.length + 4;
    },
  },
  {
    name: 'vfio/irq-state: 1 is a valid state',
    input: () => {
      const i = vfioInput('v2-stop-copy-8.0');
      return {
        ...i,
        main: editRecords(i.main, (recs) =>
          recs.map((r) => (r.kind === 'vfio_pci_config' ? { ...r, irqState: [1, 1, 1, 1] } : r)),
        ),
      };
    },
    rules: [],
  },
  {
    name: "vfio/pci-version: version 2 is the destination's own",
    input: () => {
      const i = vfioInput('v2-stop-copy-8.0');
      return {
        ...i,
        main: editRecords(i.main, (recs) =>
          recs.map((r) => (r.kind === 'vfio_pci_config' ? { ...r, pciVersion: 2 } : r)),
        ),
      };
    },
    rules: [],
  },
  {
    // a stop-copy-only device never iterates, so it needs no switchover ack: its INIT_DATA_SENT approves nothing
    name: 'vfio/switchover-ack-count: INIT_DATA_SENT from a device without precopy',
    input: () =>
      withScenario(
        'v2-stop-copy-8.0',
        (s) => ({
          ...s,
          qemu: '8.1',
          capabilities: ['return-path', 'switchover-ack'],
          mutations: [
            {
              op: 'replaceTag',
              match: { kind: 'vfio_tag', tag: 'END_OF_STATE', section: 'END' },
              tag: 'DEV_INIT_DATA_SENT',
            },
          ],
        }),
        {
          qemuVersion: '8.1',
          capabilities: ['return-path', 'switchover-ack'],
        },
      ),
    rules: ['vfio/switchover-ack-count'],
  },
  {
    name: 'vfio/switchover-ack-count: 11.1 lets a device report initial data again (re-init)',
    input: () => ({
      ...vfioInput('bad-init-data-twice'),
      load: { qemuVersion: '11.1', capabilities: ['return-path', 'switchover-ack'] },
    }),
    rules: [],
  },
  {
    name: 'vfio/switchover-ack-no-return-path: OPEN_RETURN_PATH after the last approval',
    input: () => {
      const i = vfioInput('v2-precopy-switchover-ack-8.1');
      return {
        ...i,
        main: editRecords(i.main, (recs) => {
          const open = recs.findIndex((r) => r.kind === 'command' && r.name === 'MIG_CMD_OPEN_RETURN_PATH');
          const rp = recs[open];
          const rest = recs.filter((_, j) => j !== open);
          const last = rest.map((r) => r.kind === 'vfio_tag' && r.tag === 'DEV_INIT_DATA_SENT').lastIndexOf(true);
          return [
            ...rest.slice(0, last + 1),
            ...rest.slice(last + 1, rest.findIndex((r, j) => j > last && r.kind === 'section_footer') + 1),
            rp,
            ...rest.slice(rest.findIndex((r, j) => j > last && r.kind === 'section_footer') + 1),
          ];
        }),
      };
    },
    rules: ['vfio/switchover-ack-no-return-path', 'savevm/ping-without-return-path'],
  },
];

/** Each edge: exactly its rules, valid when it has none, the first finding at its offset. */
function edgeTests(title: string, cases: readonly EdgeCase[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(c.name, () => {
        const r = validateInput(c.input());
        expect([...new Set(r.diagnostics.map((d) => d.rule))].sort()).toEqual([...c.rules].sort());
        expect(r.valid).toBe(c.rules.length === 0);
        if (c.offset) expect(r.diagnostics[0].offset).toBe(c.offset());
      });
    }
  });
}
edgeTests('the edges of the rules', EDGES);

/**
 * What each diagnostic says (rule, where, message) for every breaking input and edge: the
 * wording follows QEMU's messages (grammar/rules.ts names them); reviewed, kept in
 * test/golden/rule-messages.txt (UPDATE_GOLDEN=1 rewrites it).
 */
describe('diagnostic messages', () => {
  it('every pair and edge, as validate reports them', () => {
    const lines: string[] = [];
    const show = (label: string, i: Input) => {
      for (const d of validateInput(i).diagnostics)
        lines.push(
          `${label}: ${d.severity} [${d.rule}] ${d.channel ? `${d.channel} ` : ''}@0x${d.offset.toString(16)} ${d.path}: ${d.message}`,
        );
    };
    for (const spec of RULES) show(spec.id, PAIRS[spec.id]().broken);
    for (const c of EDGES) show(c.name, c.input());
    const text = lines.join('\n') + '\n';
    const p = join(ROOT, 'test', 'golden', 'rule-messages.txt');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(p, text);
    expect(existsSync(p), 'test/golden/rule-messages.txt is missing: UPDATE_GOLDEN=1 writes it').toBe(true);
    expect(text).toBe(readFileSync(p, 'utf8'));
  });
});

// ---- more edges: multifd, the config buffer, the return path, a lone channel ---------------

/** multifd-10.0 with the config buffer's data (after its 12-byte header) replaced. */
function withConfigBuffer(edit: (data: Uint8Array) => Uint8Array): Input {
  const clean = vfioInput('multifd-10.0');
  const multifd = clean.multifd!.map((b) => {
    const recs = channelRecords(b);
    const out: MultifdRecord[] = [];
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i];
      const next = recs[i + 1];
      if (r.kind === 'multifd_device_state' && next?.kind === 'multifd_vfio_buffer' && (next.flags & 1) === 1) {
        let j = i + 2;
        const parts: Uint8Array[] = [];
        while (recs[j]?.kind === 'multifd_payload')
          parts.push((recs[j++] as Extract<MultifdRecord, { kind: 'multifd_payload' }>).data);
        const data = edit(new Uint8Array(Buffer.concat(parts)));
        out.push({ ...r, fields: { ...r.fields, nextPacketSize: 12 + data.length } }, next);
        if (data.length) out.push({ kind: 'multifd_payload', offset: 0, length: data.length, data });
        i = j - 1;
        continue;
      }
      out.push(r);
    }
    return encodeToBytes(out);
  });
  return { ...clean, multifd };
}
const EOS = [0xff, 0xff, 0xff, 0xff, 0xef, 0x10, 0x00, 0x01];

const MORE_EDGES: EdgeCase[] = [
  {
    name: 'savevm/after-eof: --strict reports the cut vmdescription as the decode error it is',
    input: () => P(paused().subarray(0, find(paused(), 'vmdescription').offset + 100), { strict: true }),
    rules: ['stream/truncated'],
  },
  {
    // the first run's zrun becomes 0x7f 0x7f (16383): past the 4096-byte page
    name: 'ram/xbzrle: a delta whose unchanged run overruns the page',
    input: () => {
      const b = real('10.0', 'pc-xbzrle.mig');
      const x = find(b, 'ram', (r) => r.op === 'xbzrle');
      const data = x.offset + x.length - ('data' in x ? x.data.length : 0);
      return P(patch(b, data, [0xff, 0x7f]), { capabilities: ['xbzrle'] });
    },
    rules: ['ram/xbzrle'],
  },
  {
    name: 'ram/offset: an XBZRLE page past its block is judged like any page',
    input: () => {
      const b = real('10.0', 'pc-xbzrle.mig');
      const x = find(b, 'ram', (r) => r.op === 'xbzrle');
      return P(patch(b, x.offset + 2, [0x10]), { capabilities: ['xbzrle'] });
    },
    rules: ['ram/offset'],
    offset: () => find(real('10.0', 'pc-xbzrle.mig'), 'ram', (r) => r.op === 'xbzrle').offset,
  },
  {
    name: "the destination version defaults to the machine type's: a 7.2 stream is judged as 7.2",
    input: () => P(real('7.2', 'pc-paused.mig')),
    rules: [],
  },
  {
    name: "the destination version defaults to the machine type's: 10.0 pc-multifd-tcp is judged as 10.0",
    input: () => ({
      main: real('10.0', 'pc-multifd-tcp.mig'),
      load: { capabilities: ['multifd'] },
      multifd: [mfd(0), mfd(1)],
    }),
    rules: [],
  },
  // QEMU compares the id with `>` against the channel count (vfio-and-multifd.md §8.2)
  {
    name: "multifd/init-id: an id equal to the channel count passes QEMU's check; channel 0 then never connects",
    input: () => mfdInput(patch(mfd(0), 24, [2])),
    rules: ['multifd/channel-missing'],
  },
  {
    name: 'multifd/zero-pages: exactly pages_alloc less normal_pages is allowed, one more is not',
    input: () => {
      const p = firstPagesPacket(mfd(0));
      const b = mfd(0);
      const dv = new DataView(b.buffer, b.byteOffset);
      const room = dv.getUint32(p + 12) - dv.getUint32(p + 16);
      return mfdInput(patch(b, p + 32, be32(room + 1)));
    },
    rules: ['multifd/zero-pages'],
  },
  {
    name: 'multifd/zero-pages: the boundary itself',
    input: () => {
      const p = firstPagesPacket(mfd(0));
      const b = mfd(0);
      const dv = new DataView(b.buffer, b.byteOffset);
      return mfdInput(patch(b, p + 32, be32(dv.getUint32(p + 12) - dv.getUint32(p + 16))));
    },
    rules: [],
  },
  // QEMU compares normal_pages with pages_alloc by `>` (vfio-and-multifd.md §8.4)
  {
    name: 'multifd/normal-pages: pages_alloc equal to normal_pages is allowed',
    input: () => mfdInput(pagesAllocBelowNormal(0)),
    rules: [],
  },
  {
    name: 'multifd/normal-pages: one normal page more than pages_alloc is not',
    input: () => mfdInput(pagesAllocBelowNormal(1)),
    rules: ['multifd/normal-pages'],
    offset: () => firstPagesPacket(mfd(0)) + 16,
  },
  {
    name: 'multifd/zero-pages: a pre-9.0 destination does not read zero_pages',
    input: () => {
      const p = firstPagesPacket(mfd(0));
      return mfdInput(patch(mfd(0), p + 32, be32(0x10000)), mfd(1), { qemuVersion: '8.2' });
    },
    rules: ['savevm/unknown-command'], // (and the 10.0 stream's SWITCHOVER_START is unknown to 8.2)
  },
  {
    // the second offset of the packet (be64 at +320 + 8) past pc.ram
    name: 'multifd/offset: the offending entry of the offset array is named',
    input: () => {
      const p = firstPagesPacket(mfd(0));
      return mfdInput(patch(mfd(0), p + 328, [0, 0, 0, 1, 0, 0, 0, 0]));
    },
    rules: ['multifd/offset'],
    offset: () => firstPagesPacket(mfd(0)) + 328,
  },
  {
    // VFIODeviceStatePacket's header is 12 bytes (version, idx, flags; vfio-and-multifd.md §8.7):
    // a buffer of 11 is refused as too short, as one of 8 is
    name: 'vfio/buffer-too-short: a buffer one byte short of its 12-byte header',
    input: () => deviceStateEdit('short', 11).broken,
    rules: ['vfio/buffer-too-short', 'vfio/buffer-missing'],
  },
  {
    name: 'vfio/config-buffer-flag: a config buffer shorter than a tag',
    input: () => withConfigBuffer((d) => d.subarray(0, 4)),
    rules: ['vfio/config-buffer-flag'],
  },
  {
    name: 'vfio/config-end-flag: bytes after END_OF_STATE in the config buffer',
    input: () => withConfigBuffer((d) => new Uint8Array([...d, 0])),
    rules: ['vfio/config-end-flag'],
  },
  {
    name: 'vfio/config-end-flag: the config buffer does not end with END_OF_STATE',
    input: () => withConfigBuffer((d) => d.subarray(0, d.length - 8)),
    rules: ['vfio/config-end-flag'],
  },
  {
    name: 'vfio/config-end-flag: the config cut inside the PCI config',
    input: () => withConfigBuffer((d) => new Uint8Array([...d.subarray(0, 40), ...EOS])),
    rules: ['vfio/config-end-flag'],
  },
  { name: 'the config buffer as the save engine writes it', input: () => withConfigBuffer((d) => d), rules: [] },
  {
    name: 'return-path/switchover-ack-unexpected: a second SWITCHOVER_ACK',
    input: () => saInput(splice(saRp(), 4, 0, [...saRp().subarray(0, 4)])),
    rules: ['return-path/switchover-ack-unexpected'],
    offset: () => 4,
  },
  {
    name: "return-path/req-pages: page requests with postcopy-ram are the destination's right",
    input: () =>
      saInput(splice(saRp(), 12, 0, [...be16(4), ...be16(12), 0, 0, 0, 0, 0, 0, 0, 0, ...be32(4096)]), {
        ...SA_LOAD,
        capabilities: [...SA_LOAD.capabilities!, 'postcopy-ram'],
      }),
    rules: [],
  },
  {
    // MIG_RP_MSG_RESUME_ACK (6, len 4) is in the table: not unknown, whatever it means here
    name: 'return-path/unknown-message: a known message is not unknown',
    input: () => saInput(splice(saRp(), 12, 0, [...be16(6), ...be16(4), ...be32(1)])),
    rules: [],
  },
];

edgeTests('more edges of the rules', MORE_EDGES);

describe('a lone multifd channel (validate CHANNEL, no main stream)', () => {
  it('a real channel is valid; a packet version of 2 is not', () => {
    expect(validateMultifdChannel({ name: 'ch', source: new BufferSource(mfd(0), 'ch') }).valid).toBe(true);
    const p = firstPagesPacket(mfd(0));
    const bad = validateMultifdChannel({ name: 'ch', source: new BufferSource(patch(mfd(0), p + 4, be32(2)), 'ch') });
    expect(bad.valid).toBe(false);
    expect(bad.diagnostics.map((d) => d.rule)).toEqual(['multifd/packet-version']);
  });
  it('a warning alone leaves it valid', () => {
    const packets = channelRecords(mfd(0)).filter((r) => r.kind === 'multifd_packet' && r.fields.normalPages > 0);
    const [a, b] = [packets[0].offset, packets[1].offset];
    const r = validateMultifdChannel({
      name: 'ch',
      source: new BufferSource(patch(mfd(0), b + 24, [...mfd(0).subarray(a + 24, a + 32)]), 'ch'),
    });
    expect(r.diagnostics.map((d) => d.rule)).toContain('multifd/packet-num');
    expect(r.valid).toBe(true);
  });
});
