import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateToSink, modelOfFile, readModel } from '../src/app/model.js';
import { MemorySink } from '../src/io/sink.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import { StreamReader } from '../src/io/reader.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import { MULTIFD_FLAG_COMPRESSION_MASK } from '../grammar/multifd.js';
import { validateMain } from '../src/loader/validate.js';
import { MODEL_SCHEMA } from '../src/generator/model-schema.js';
import type { MachineModel, StateObject } from '../src/generator/model.js';
import { decodeFile, hasQemu72, mainStreams, REAL, ROOT, tempDir } from './helpers.js';

/**
 * The save engine against QEMU's own recordings: the model of every valid recording
 * generates that recording again byte for byte, with no override; the values in the model
 * are those analyze-migration.py printed for the same file; an edited model makes a
 * stream the reference loader and a real QEMU 7.2 accept, holding the edit.
 */
const tmp = tempDir('migstream-model-');
const RECORDED = join(ROOT, 'fixtures', 'recorded-7.2');
const MIGSTREAM = join(ROOT, 'bin', 'migstream');
const QEMU_LOAD = join(ROOT, 'bin', 'qemu-load');

/** Streams QEMU's source did not finish: no model describes them (the loader names what is missing). */
const INVALID = new Set(['qemu-10.0/pc-no-configuration.mig']);

const recordings = [
  ...mainStreams().map((f) => ({ label: `${f.version}/${f.name}`, path: f.path, version: f.version.slice(5) })),
  ...['pc-validate-uuid', 'pc-xbzrle', 'q35-devices-running'].map((n) => ({
    label: `recorded-7.2/${n}.mig`,
    path: join(RECORDED, `${n}.mig`),
    version: '7.2',
  })),
];

function countRecords(path: string, pred: (r: { kind: string; op?: string }) => boolean): number {
  return decodeFile(path).records.filter((r) => pred(r as { kind: string; op?: string })).length;
}

/** The channel captures recorded beside a main stream (pc-multifd-*.multifd0.bin, ...). */
function channelsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = 0; existsSync(path.replace(/\.mig$/, `.multifd${i}.bin`)); i++)
    out.push(path.replace(/\.mig$/, `.multifd${i}.bin`));
  return out;
}

/** RAM packets of the channels that carry pages (compressed ones carry their payload in the model). */
function packetsWithPages(channels: string[]): { all: number; compressed: number } {
  let all = 0;
  let compressed = 0;
  for (const f of channels)
    for (const r of decodeMultifdChannel(new StreamReader(new FileSource(f)))) {
      if (r.kind !== 'multifd_packet') continue;
      all++;
      if (r.fields.normalPages + r.fields.zeroPages && r.header.flags & MULTIFD_FLAG_COMPRESSION_MASK) compressed++;
    }
  return { all, compressed };
}

describe('model then gen reproduces every valid real recording', () => {
  for (const rec of recordings.filter((r) => !INVALID.has(r.label))) {
    it(rec.label, () => {
      const out = join(tmp, rec.label.replace(/[/.]/g, '_') + '.json');
      const multifd = channelsOf(rec.path);
      // pc-old-format has no configuration to name its release
      const qemu = rec.label.includes('old-format') ? rec.version : undefined;
      const r = modelOfFile(rec.path, out, { qemu, multifd });
      expect(r.differingFile).toBeUndefined();
      expect(r.identical).toBe(true);
      expect(r.model.qemu).toBe(rec.version);
      // compressed multifd payloads are carried (the zstd stream state is not derived), nothing else
      const packets = packetsWithPages(multifd);
      expect(r.stats.overrides).toEqual(packets.compressed ? { 'multifd-compressed-payload': packets.compressed } : {});
      expect(r.stats.multifdPackets).toBe(packets.all);
      expect(r.stats.multifdChannels).toBe(multifd.length);
      const pageRecords = countRecords(
        rec.path,
        (x) => x.kind === 'ram' && ['zero', 'page', 'xbzrle', 'compress_page'].includes(x.op ?? ''),
      );
      // the pages the model sends are the page records of the stream (and the channels' pages)
      if (!r.model.settings.capabilities.includes('mapped-ram') && !multifd.length)
        expect(r.stats.pagesSent).toBe(pageRecords);
      expect(r.stats.xbzrlePages).toBe(countRecords(rec.path, (x) => x.op === 'xbzrle'));
      expect(r.stats.compressedPages).toBe(countRecords(rec.path, (x) => x.op === 'compress_page'));
    });
  }

  // the save engine's VFIO streams (no hardware here records one): v1, v2 stop-copy, precopy with
  // switchover-ack, two devices, multifd device state, DEV_CONFIG_LOAD_READY
  const VFIO = join(ROOT, 'fixtures', 'vfio');
  for (const name of readdirSync(VFIO).filter((f) => f.endsWith('.mig') && !f.startsWith('bad-'))) {
    it(`fixtures/vfio/${name}`, () => {
      const path = join(VFIO, name);
      const multifd = channelsOf(path);
      const r = modelOfFile(path, join(tmp, `vfio-${name}.json`), { multifd });
      expect(r.differingFile).toBeUndefined();
      expect(r.identical).toBe(true);
      expect(r.stats.overrides).toEqual({});
      const sections = decodeFile(path).records.filter((x) => x.kind === 'section' && x.idstr.endsWith('/vfio'));
      expect(r.stats.vfioDevices).toBe(new Set(sections.map((x) => x.kind === 'section' && x.sectionId)).size);
    });
  }

  it('an unfinished recording has no model: the decoder names where it ends', () => {
    expect(() => modelOfFile(join(REAL, 'qemu-10.0', 'pc-no-configuration.mig'), join(tmp, 'x.json'))).toThrow(
      /expected QEMU_VM_SECTION_FOOTER \(0x7e\) for section 1, found end of stream/,
    );
  });
});

function hexToNumber(v: unknown): number {
  return Number(BigInt(String(v)));
}

describe('the model holds the machine as QEMU described it', () => {
  const out = join(tmp, 'paused72.json');
  const { model } = modelOfFile(join(REAL, 'qemu-7.2', 'pc-paused.mig'), out);
  const analyze = JSON.parse(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.analyze.json'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;

  it('machine type, RAMBlocks and their lengths: those analyze-migration.py printed', () => {
    expect(model.machine).toEqual({ type: 'pc-i440fx-7.2', targetPageSize: 4096 });
    const sizes = analyze['ram (2)']?.['section sizes'] as Record<string, string>;
    expect(Object.fromEntries(model.ram.blocks.map((b) => [b.idstr, b.usedLength]))).toEqual(
      Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, hexToNumber(v)])),
    );
    expect(model.ram.sectionId).toBe(2);
    expect(model.settings).toEqual({
      sendConfiguration: true,
      sendSectionFooter: true,
      vmdescription: true,
      capabilities: [],
    });
  });

  it('device sections in stream order with their ids; CPU registers equal the script output', () => {
    const keys = Object.keys(analyze).filter((k) => !k.startsWith('ram ('));
    expect(model.devices.map((d) => `${d.idstr} (${d.sectionId})`)).toEqual(keys);
    const cpu = model.devices.find((d) => d.idstr === 'cpu')?.state as StateObject;
    const script = analyze['cpu (5)'];
    expect(cpu['env.eip']).toBe(hexToNumber(script['env.eip']));
    expect(cpu['env.regs']).toEqual((script['env.regs'] as string[]).map(hexToNumber));
    expect(cpu['env.hflags']).toBe(hexToNumber(script['env.hflags']));
  });

  it('the model file passes its schema; a typo or a made-up capability is refused in words', () => {
    expect(readModel(out).format).toBe('migstream-model');
    const bad = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    (bad.settings as Record<string, unknown>).sendSectionFooters = true;
    (bad.settings as Record<string, unknown>).capabilities = ['multi-fd'];
    const badPath = join(tmp, 'bad.json');
    writeFileSync(badPath, JSON.stringify(bad));
    const r = spawnSync(MIGSTREAM, ['gen', badPath, '-o', join(tmp, 'bad.mig')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('/settings: unknown key "sendSectionFooters"');
    expect(r.stderr).toContain('/settings/capabilities/0: must be equal to one of the allowed values');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('schemas/migstream-model.schema.json is the schema gen checks with (npm run docs writes it)', () => {
    const file = JSON.parse(readFileSync(join(ROOT, 'schemas', 'migstream-model.schema.json'), 'utf8')) as unknown;
    expect(file).toEqual(JSON.parse(JSON.stringify(MODEL_SCHEMA)));
  });
});

/** Generate a model (side files next to `modelPath`) into memory. */
function generateBytes(m: MachineModel, dir: string): Uint8Array {
  const sink = new MemorySink();
  generateToSink(m, dir, sink);
  return sink.bytes();
}

const PATTERN_AT = 0x100000;
const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

/** pc-paused (7.2) with three pages of pc.ram holding a pattern and EAX = 0x12345678. */
function editedPaused(dir: string): { model: MachineModel; path: string } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'edited.json');
  const { model } = modelOfFile(join(REAL, 'qemu-7.2', 'pc-paused.mig'), path);
  const cpu = model.devices.find((d) => d.idstr === 'cpu')?.state as StateObject;
  (cpu['env.regs'] as number[])[0] = 0x12345678;
  const image = model.ram.blocks[0]?.image as string;
  const fd = openSync(join(dir, image), 'r+');
  writeSync(fd, pattern(3 * 4096), 0, 3 * 4096, PATTERN_AT);
  closeSync(fd);
  writeFileSync(path, JSON.stringify(model));
  return { model, path };
}

describe('an edited model is a stream of the edited machine', () => {
  it('page contents and a register: the reference loader accepts it, and decoding shows the edit', () => {
    const dir = join(tmp, 'edit');
    const { model } = editedPaused(dir);
    const bytes = generateBytes(model, dir);
    const v = validateMain(new BufferSource(bytes), { qemuVersion: '7.2' });
    expect(v.diagnostics).toEqual([]);
    const file = join(dir, 'edited.mig');
    writeFileSync(file, bytes);
    const { records } = decodeFile(file);
    const pages = records.filter((r) => r.kind === 'ram' && r.op === 'page' && r.block === 'pc.ram');
    const sent = pages.filter((r) => r.kind === 'ram' && r.addr >= PATTERN_AT && r.addr < PATTERN_AT + 3 * 4096);
    expect(sent.map((r) => r.kind === 'ram' && r.addr)).toEqual([PATTERN_AT, PATTERN_AT + 4096, PATTERN_AT + 8192]);
    sent.forEach((r, i) => {
      if (r.kind === 'ram' && r.op === 'page')
        expect(Buffer.from(r.data)).toEqual(pattern(3 * 4096).subarray(i * 4096, (i + 1) * 4096));
    });
    const cpu = records.find((r) => r.kind === 'vmstate' && r.idstr === 'cpu');
    const regs = cpu?.kind === 'vmstate' ? cpu.node.fields.find((f) => f.name === 'env.regs') : undefined;
    const eax = regs?.elements[0];
    expect(eax?.kind === 'bytes' && Buffer.from(eax.data).toString('hex')).toBe('0000000012345678');
  });

  it('a device removed, the release moved from 11.1 to 7.2: a valid 7.2 stream without them', () => {
    const dir = join(tmp, 'move');
    mkdirSync(dir);
    const path = join(dir, 'm.json');
    const { model } = modelOfFile(join(REAL, 'qemu-11.1', 'pc-paused.mig'), path);
    model.qemu = '7.2';
    model.machine.type = 'pc-i440fx-7.2';
    model.devices = model.devices.filter((d) => d.idstr !== 'pcspk');
    const bytes = generateBytes(model, dir);
    const v = validateMain(new BufferSource(bytes), { qemuVersion: '7.2' });
    expect(v.diagnostics).toEqual([]);
    const file = join(dir, 'm.mig');
    writeFileSync(file, bytes);
    const { records } = decodeFile(file);
    expect(records.some((r) => r.kind === 'command' && r.name === 'MIG_CMD_SWITCHOVER_START')).toBe(false);
    expect(records.some((r) => r.kind === 'section' && r.idstr === 'pcspk')).toBe(false);
    const desc = records.find((r) => r.kind === 'vmdescription');
    // 7.2's vmdescription has no configuration entry (savevm-main-channel.md §5.5)
    expect(desc?.kind === 'vmdescription' && Object.keys(JSON.parse(desc.json) as object)).toEqual([
      'page_size',
      'devices',
    ]);
  });

  it('a value that does not fit its field is refused with the field named', () => {
    const dir = join(tmp, 'toobig');
    const { model } = editedPaused(dir);
    const cpu = model.devices.find((d) => d.idstr === 'cpu')?.state as StateObject;
    cpu['env.hflags'] = 2 ** 40;
    expect(() => generateBytes(model, dir)).toThrow(/cpu\.env\.hflags: 1099511627776 does not fit uint32 \(4 bytes\)/);
  });
});

describe.skipIf(!hasQemu72)('QEMU 7.2 loads what the engine writes from an edited model', () => {
  it('guest memory and EAX read back over QMP equal the model', () => {
    const dir = join(tmp, 'qemu');
    const { path } = editedPaused(dir);
    const mig = join(dir, 'edited.mig');
    const gen = spawnSync(MIGSTREAM, ['gen', path, '-o', mig], { encoding: 'utf8' });
    expect(gen.status).toBe(0);
    const mem = join(dir, 'mem.bin');
    // the recording's own destination: -machine pc -m 32M -nodefaults -display none -accel tcg
    const r = spawnSync(
      QEMU_LOAD,
      ['--pmemsave', `${PATTERN_AT}:${3 * 4096}:${mem}`, '--hmp', 'info registers', '--timeout', '60000', mig],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(mem)).toEqual(pattern(3 * 4096));
    expect(r.stdout).toMatch(/EAX=12345678 /);
    // and the rest of the CPU is the recording's: EIP at the reset vector
    expect(r.stdout).toMatch(/EIP=0000fff0 /);
  }, 90_000);
});

describe('the command line: model, then gen, as a user runs them', () => {
  it('model --multifd --stats, gen into another directory: the stream and both channels, byte for byte', () => {
    const dir = join(tmp, 'cli');
    mkdirSync(join(dir, 'out'), { recursive: true });
    const base = join(REAL, 'qemu-10.0', 'pc-multifd-tcp');
    const model = join(dir, 'm.json');
    const r = spawnSync(
      MIGSTREAM,
      [
        'model',
        `${base}.mig`,
        '--multifd',
        `${base}.multifd0.bin`,
        '--multifd',
        `${base}.multifd1.bin`,
        '-o',
        model,
        '--stats',
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toContain(`wrote ${model}`);
    expect(r.status).toBe(0);
    const stats = JSON.parse(r.stdout) as { overrideTotal: number; multifdChannels: number };
    expect(stats).toMatchObject({ overrideTotal: 0, multifdChannels: 2 });
    const out = join(dir, 'out', 'again.mig');
    const g = spawnSync(MIGSTREAM, ['gen', model, '-o', out], { encoding: 'utf8' });
    expect(g.status).toBe(0);
    expect(g.stderr.trim().split('\n')).toEqual([
      `wrote ${out}`,
      `wrote ${join(dir, 'out', 'again.multifd0.bin')}`,
      `wrote ${join(dir, 'out', 'again.multifd1.bin')}`,
    ]);
    expect(readFileSync(out).equals(readFileSync(`${base}.mig`))).toBe(true);
    for (const i of [0, 1])
      expect(
        readFileSync(join(dir, 'out', `again.multifd${i}.bin`)).equals(readFileSync(`${base}.multifd${i}.bin`)),
      ).toBe(true);
  });

  it('a side file gone: exit 2 naming it, no stack trace', () => {
    const dir = join(tmp, 'cli-missing');
    mkdirSync(dir);
    const model = join(dir, 'm.json');
    expect(spawnSync(MIGSTREAM, ['model', join(REAL, 'qemu-7.2', 'pc-paused.mig'), '-o', model]).status).toBe(0);
    rmSync(join(dir, 'm.model', 'block0.img'));
    const g = spawnSync(MIGSTREAM, ['gen', model, '-o', join(dir, 'x.mig')], { encoding: 'utf8' });
    expect(g.status).toBe(2);
    expect(g.stderr).toBe(`migstream: a side file of the model is missing: ${join(dir, 'm.model', 'block0.img')}\n`);
  });
});
