import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { save } from '../src/generator/save.js';
import { RamExtractor } from '../src/formats/ram-extract.js';
import { deviceFileStem, VfioExtractor } from '../src/formats/vfio-extract.js';
import type { MainRecord } from '../src/model/records.js';

// The extractors used as a library: records in, files out. The expected file contents are the
// bytes the records carry (golden.test.ts checks the same on real recordings through the CLI).

const tmp = tempDir('migstream-extract-');
let n = 0;
const r0 = { offset: 0, length: 0 };
const PAGE = 4096;
/** This process's open files inside `dir` (other work in the process cannot change the count). */
function openFdsUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir + '/')) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

function block(idstr: string, usedLength: number): MainRecord {
  return { kind: 'ram_block', ...r0, idstr, usedLength };
}
function page(blockName: string, addr: number, fill: number): MainRecord {
  return { kind: 'ram', op: 'page', ...r0, flags: 8, addr, block: blockName, data: new Uint8Array(PAGE).fill(fill) };
}

describe('RamExtractor', () => {
  it('one file per RAMBlock; a name with "/" inside becomes a subdirectory, leading slashes are dropped', () => {
    const dir = join(tmp, `ram${n++}`);
    const x = new RamExtractor(dir, PAGE);
    x.add(block('0000:00:03.0/e1000.rom', 2 * PAGE));
    x.add(block('/rom@etc/acpi/rsdp', PAGE));
    x.add(page('0000:00:03.0/e1000.rom', PAGE, 0x42));
    x.close();
    const rom = readFileSync(join(dir, '0000:00:03.0', 'e1000.rom'));
    expect(rom.length).toBe(2 * PAGE);
    expect(rom.subarray(0, PAGE).every((b) => b === 0)).toBe(true);
    expect(rom.subarray(PAGE).every((b) => b === 0x42)).toBe(true);
    expect(readFileSync(join(dir, 'rom@etc', 'acpi', 'rsdp')).length).toBe(PAGE);
  });

  it('mapped-ram: pages absent from the bitmap are not written', () => {
    const dir = join(tmp, `ram${n++}`);
    const x = new RamExtractor(dir, PAGE);
    x.add(block('pc.ram', 3 * PAGE));
    x.add({
      kind: 'mapped_ram_page',
      ...r0,
      block: 'pc.ram',
      index: 0,
      present: true,
      data: new Uint8Array(PAGE).fill(1),
    });
    x.add({
      kind: 'mapped_ram_page',
      ...r0,
      block: 'pc.ram',
      index: 2,
      present: false,
      data: new Uint8Array(PAGE).fill(2),
    });
    x.close();
    const ram = readFileSync(join(dir, 'pc.ram'));
    expect([ram[0], ram[PAGE], ram[2 * PAGE]]).toEqual([1, 0, 0]);
  });

  it('a zero page from a multifd channel clears what an earlier round wrote', () => {
    const dir = join(tmp, `ram${n++}`);
    const x = new RamExtractor(dir, PAGE);
    x.add(block('pc.ram', 2 * PAGE));
    x.putPage('pc.ram', 0, new Uint8Array(PAGE).fill(7));
    x.putPage('pc.ram', PAGE, new Uint8Array(PAGE).fill(8));
    x.putPage('pc.ram', 0);
    x.close();
    const ram = readFileSync(join(dir, 'pc.ram'));
    expect(ram.subarray(0, PAGE).every((b) => b === 0)).toBe(true);
    expect(ram.subarray(PAGE).every((b) => b === 8)).toBe(true);
  });

  it('close() closes every file it opened', () => {
    const dir = join(tmp, `ram${n++}`);
    const x = new RamExtractor(dir, PAGE);
    x.add(block('a', PAGE));
    x.add(block('b', PAGE));
    expect(openFdsUnder(dir)).toBe(2);
    x.close();
    expect(openFdsUnder(dir)).toBe(0);
  });
});

describe('VfioExtractor', () => {
  it('file names: path separators and a leading run of dots become "_"', () => {
    expect(deviceFileStem('0000:00:02.0/vfio')).toBe('0000:00:02.0_vfio');
    expect(deviceFileStem('..\\..\\x')).toBe('__.._x');
    expect(deviceFileStem('...x')).toBe('_x');
    expect(deviceFileStem('.a.b')).toBe('_a.b');
  });

  it('the device data in order, the byte count per device; a device without DEV_DATA_STATE has no .data file', () => {
    const dir = join(tmp, `vfio${n++}`);
    const x = new VfioExtractor(dir);
    const s = save({
      qemu: '8.0',
      vfio: [
        { path: '0000:00:02.0', stopCopy: [100, 50] },
        { path: '0000:00:03.0', stopCopy: [] },
      ],
    });
    const data: number[] = [];
    let dev = '';
    for (const rec of s.main) {
      if (rec.kind === 'section') dev = rec.idstr;
      if (rec.kind === 'vfio_data' && dev === '0000:00:02.0/vfio') data.push(...rec.data);
      x.add(rec);
    }
    x.close();
    expect(data.length).toBe(150);
    expect([...readFileSync(join(dir, '0000:00:02.0_vfio.data'))]).toEqual(data);
    expect(x.bytes.get('0000:00:02.0/vfio')).toBe(150);
    expect(existsSync(join(dir, '0000:00:03.0_vfio.data'))).toBe(false);
    expect(existsSync(join(dir, '0000:00:03.0_vfio.config'))).toBe(true);
  });

  it('a DEV_DATA_STATE with no data still gives the device its (empty) .data file', () => {
    const dir = join(tmp, `vfio${n++}`);
    const x = new VfioExtractor(dir);
    for (const rec of save({ qemu: '8.0', vfio: [{ path: '0000:00:02.0', stopCopy: [0] }] }).main) x.add(rec);
    x.close();
    expect(readFileSync(join(dir, '0000:00:02.0_vfio.data')).length).toBe(0);
  });

  it('close() closes every file it opened', () => {
    const dir = join(tmp, `vfio${n++}`);
    const x = new VfioExtractor(dir);
    x.write('a/vfio', new Uint8Array(3));
    x.writeConfig('a/vfio', new Uint8Array(3));
    expect(openFdsUnder(dir)).toBe(2);
    x.close();
    expect(openFdsUnder(dir)).toBe(0);
  });
});
