import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceRecord, encodeModel } from '../src/generator/engine.js';
import { encodeToBytes } from '../src/codec/open.js';
import { extractModel } from '../src/generator/extract.js';
import type {
  DeviceModel,
  HistoryEntry,
  MachineModel,
  PageRun,
  RamRound,
  StateObject,
} from '../src/generator/model.js';
import { MemoryFiles, MemoryFilesWriter } from '../src/generator/side-files.js';
import { openMainStream } from '../src/codec/open.js';
import { MemorySink } from '../src/io/sink.js';
import { BufferSource } from '../src/io/source.js';
import { validateMain } from '../src/loader/validate.js';
import type { FieldDescription } from '../src/vmstate/vmdesc.js';

/**
 * Random machines: random releases, settings, RAMBlocks, rounds of page sends (pages sent
 * again in later rounds with other contents), devices with VMState layouts of every
 * integer width, bool, buffers, arrays, structs and subsections. Each one is generated,
 * accepted by the reference loader, and extracted back to the same model and memory.
 */
const PAGE = 4096;

interface Built {
  model: MachineModel;
  files: Map<string, Uint8Array>;
}

const leafField = fc.oneof(
  fc.record({ type: fc.constantFrom('uint8', 'uint16', 'uint32', 'uint64', 'int32', 'int64', 'bool') }),
  fc.record({ type: fc.constant('buffer'), size: fc.integer({ min: 1, max: 12 }) }),
);
const SIZES: Record<string, number> = { uint8: 1, uint16: 2, uint32: 4, uint64: 8, int32: 4, int64: 8, bool: 1 };

function valueFor(type: string, size: number, seed: number): number | boolean | string {
  if (type === 'bool') return seed % 2 === 0;
  if (type === 'buffer') return Buffer.alloc(size, seed & 0xff).toString('hex');
  const max = size >= 6 ? Number.MAX_SAFE_INTEGER : 2 ** (size * 8) - 1;
  const v = seed % (max + 1);
  return type.startsWith('int') && seed % 3 === 0 ? -Math.min(v, 2 ** (size * 8 - 1)) : v % 2 ** (size * 8 - 1);
}

/** A device's vmsd and values from a few random leaf fields, an array, a struct and maybe a subsection. */
const device = fc
  .record({
    leaves: fc.array(leafField, { minLength: 1, maxLength: 4 }),
    arrayLen: fc.integer({ min: 0, max: 3 }),
    struct: fc.boolean(),
    sub: fc.boolean(),
    seed: fc.nat(),
  })
  .map(({ leaves, arrayLen, struct, sub, seed }) => {
    const fields: FieldDescription[] = [];
    const state: StateObject = {};
    leaves.forEach((l, i) => {
      const size = 'size' in l ? l.size : (SIZES[l.type] ?? 1);
      fields.push({ name: `f${i}`, type: l.type, size });
      state[`f${i}`] = valueFor(l.type, size, seed + i * 7919);
    });
    if (arrayLen) {
      fields.push({ name: 'arr', array_len: arrayLen, type: 'uint16', size: 2 });
      state.arr = Array.from({ length: arrayLen }, (_, k) => (seed + k) & 0xffff);
    }
    if (struct) {
      fields.push({
        name: 'inner',
        type: 'struct',
        struct: { vmsd_name: 'inner', version: 1, fields: [{ name: 'x', type: 'uint32', size: 4 }] },
        size: 4,
      });
      state.inner = { x: seed % 2 ** 32 };
    }
    const vmsd: NonNullable<DeviceModel['vmsd']> = { vmsd_name: 'dev', version: 3, fields };
    if (sub) {
      vmsd.subsections = [{ vmsd_name: 'dev/extra', version: 2, fields: [{ name: 'y', type: 'uint8', size: 1 }] }];
      state.$subsections = { 'dev/extra': { y: seed & 0xff } };
    }
    return { vmsd, state };
  });

const machine = fc.record({
  qemu: fc.constantFrom('7.2', '8.0', '8.2', '9.0', '10.0', '11.1'),
  footers: fc.boolean(),
  vmdescription: fc.boolean(),
  returnPath: fc.constantFrom('none', 'return-path', 'postcopy-ram'),
  ignoreShared: fc.boolean(),
  uuid: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: undefined }),
  blocks: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }),
  // per round and block: which pages go out (a bit each) and what they hold (0 = a zero page)
  rounds: fc.array(
    fc.array(fc.array(fc.nat({ max: 3 }), { minLength: 6, maxLength: 6 }), { minLength: 3, maxLength: 3 }),
    {
      minLength: 1,
      maxLength: 4,
    },
  ),
  devices: fc.array(device, { maxLength: 3 }),
});

/** The canonical model of those choices, its side files written as extraction names them. */
type Choices = typeof machine extends fc.Arbitrary<infer T> ? T : never;

function build(c: Choices): Built {
  const files = new Map<string, Uint8Array>();
  const caps: string[] = [];
  if (c.ignoreShared) caps.push('x-ignore-shared');
  if (c.returnPath !== 'none') caps.push(c.returnPath);
  const blocks = c.blocks.map((pages, i) => {
    const b: MachineModel['ram']['blocks'][number] = {
      idstr: `block${i}.ram`,
      usedLength: pages * PAGE,
      image: `block${i}.img`,
    };
    // not a power of two: with postcopy-ram too, the reader tells an optional page size
    // (sent only for huge-page blocks) from mr_addr by its value
    if (c.ignoreShared) b.mrAddr = i * 0x100000 + 0x3000;
    return b;
  });
  const images = blocks.map((b) => new Uint8Array(b.usedLength));
  const last = new Map<string, number>();
  const history: HistoryEntry[] = [];
  const historyBytes: Uint8Array[] = [];
  const rounds: RamRound[] = c.rounds.map((perBlock, r) => {
    const roundIndex = r === c.rounds.length - 1 ? -1 : r;
    const runs: PageRun[] = [];
    perBlock.forEach((pages, b) => {
      const block = blocks[b];
      if (!block) return;
      pages.forEach((fill, p) => {
        if (p * PAGE >= block.usedLength || (fill === 0 && r % 2 === 1 && p % 2 === 0)) return;
        const key = `${b}:${p}`;
        const before = last.get(key);
        const image = images[b] as Uint8Array;
        if (before !== undefined) {
          history.push([b, p, before]);
          historyBytes.push(image.slice(p * PAGE, (p + 1) * PAGE));
        }
        last.set(key, roundIndex);
        image.fill(fill === 0 ? 0 : (fill * 37 + r * 11 + p) & 0xff || 1, p * PAGE, (p + 1) * PAGE);
        const prev = runs[runs.length - 1];
        if (prev && prev.block === b && prev.first + prev.count === p) prev.count++;
        else runs.push({ block: b, first: p, count: 1 });
      });
    });
    return { runs };
  });
  blocks.forEach((b, i) => files.set(b.image as string, images[i]));
  const ram: MachineModel['ram'] = {
    sectionId: 1,
    instanceId: 0,
    version: 4,
    blocks,
    iterations: rounds.slice(0, -1),
    complete: rounds[rounds.length - 1],
  };
  if (history.length) {
    ram.history = history;
    ram.historyFile = 'history.bin';
    files.set('history.bin', Buffer.concat(historyBytes));
  }
  const model: MachineModel = {
    format: 'migstream-model',
    version: 1,
    qemu: c.qemu,
    machine: { type: `pc-i440fx-${c.qemu}`, targetPageSize: PAGE },
    settings: {
      sendConfiguration: true,
      // a stream without a vmdescription is read by its footers (QEMU sends both by default)
      sendSectionFooter: c.footers || !c.vmdescription,
      vmdescription: c.vmdescription,
      capabilities: caps,
    },
    ram,
    devices: c.devices.map((d, i) => {
      const dev: DeviceModel = { idstr: `dev${i}`, instanceId: 0, sectionId: 2 + i, version: 3 };
      if (c.vmdescription) {
        dev.vmsd = d.vmsd;
        dev.state = d.state;
      } else {
        // suppress-vmdesc: a device is its payload bytes (the same layout, written out)
        const rec = deviceRecord({ ...dev, vmsd: d.vmsd, state: d.state });
        dev.payload = Buffer.from(encodeToBytes([rec])).toString('hex');
      }
      return dev;
    }),
  };
  if (c.uuid) {
    model.machine.uuid = Buffer.from(c.uuid).toString('hex');
    model.settings.validateUuid = true;
  }
  return { model, files };
}

function generate(b: Built): Uint8Array {
  const sink = new MemorySink();
  encodeModel(b.model, new MemoryFiles(b.files), sink);
  return sink.bytes();
}

describe('random models: generate, load, extract', () => {
  it('the loader accepts each generated stream, and its model is the model it came from', () => {
    fc.assert(
      fc.property(machine, (c) => {
        const built = build(c);
        const bytes = generate(built);
        const v = validateMain(new BufferSource(bytes), {
          qemuVersion: c.qemu,
          capabilities: built.model.settings.capabilities,
          sectionFooters: built.model.settings.sendSectionFooter,
        });
        expect(v.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);

        const out = new MemoryFilesWriter();
        const back = extractModel(openMainStream(new BufferSource(bytes), { copyData: true }).records(), out);
        const sorted = (m: MachineModel): MachineModel => ({
          ...m,
          settings: { ...m.settings, capabilities: [...m.settings.capabilities].sort() },
        });
        expect(sorted(back)).toEqual(sorted(built.model));
        // the memory and the superseded contents, page for page
        for (const b of built.model.ram.blocks) {
          const f = b.image as string;
          expect(out.read(f, 0, b.usedLength)).toEqual(new MemoryFiles(built.files).read(f, 0, b.usedLength));
        }
        const h = (built.model.ram.history?.length ?? 0) * PAGE;
        expect(out.read('history.bin', 0, h)).toEqual(new MemoryFiles(built.files).read('history.bin', 0, h));
      }),
      { numRuns: 60, seed: 20261204 },
    );
  });
});
