import { RamFlag } from '../../grammar/ram.js';
import { QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION } from '../../grammar/savevm.js';
import { MainChannelEncoder } from '../codec/encode.js';
import { FileSink, MemorySink, StreamWriter, type ByteSink } from '../io/sink.js';

const PAGE = 4096;

/**
 * A precopy-shaped stream of any size for benchmarks and memory tests: one RAMBlock of `requested`
 * bytes rounded up to whole pages,
 * every page a normal PAGE record whose first and last bytes vary with its address (so no two
 * neighbouring pages are alike and none is a zero page). Written as it is made. It ends with a
 * vmdescription, as QEMU's precopy streams do (no devices: the stream has none), so that
 * analyze-migration.py reads it too, beside migstream in the bench.
 */
export function writeRamStream(path: string, requested: number): void {
  encodeRamStream(new FileSink(path), requested);
}

/** The same stream in memory (a small one: a decoder's warm-up, tests). */
export function ramStreamBytes(requested: number): Uint8Array {
  const sink = new MemorySink();
  encodeRamStream(sink, requested);
  return sink.bytes();
}

function encodeRamStream(sink: ByteSink, requested: number): void {
  // a RAMBlock is whole pages (MEM_SIZE shares its word with the flag bits below the page size)
  const bytes = Math.ceil(requested / PAGE) * PAGE;
  const w = new StreamWriter(sink, 1 << 22);
  const enc = new MainChannelEncoder(w);
  enc.write({ kind: 'file_header', offset: 0, length: 8, magic: QEMU_VM_FILE_MAGIC, version: QEMU_VM_FILE_VERSION });
  enc.write({ kind: 'configuration', offset: 0, length: 0, machineType: 'pc-i440fx-11.1', subsections: [] });
  enc.write({
    kind: 'section',
    offset: 0,
    length: 0,
    section: 'START',
    sectionId: 1,
    idstr: 'ram',
    instanceId: 0,
    versionId: 4,
  });
  enc.write({ kind: 'ram', op: 'mem_size', offset: 0, length: 0, flags: RamFlag.RAM_SAVE_FLAG_MEM_SIZE, addr: bytes });
  enc.write({ kind: 'ram_block', offset: 0, length: 0, idstr: 'pc.ram', usedLength: bytes });
  enc.write({ kind: 'ram', op: 'eos', offset: 0, length: 0, flags: RamFlag.RAM_SAVE_FLAG_EOS, addr: 0 });
  enc.write({ kind: 'section_footer', offset: 0, length: 0, sectionId: 1 });
  enc.write({
    kind: 'section',
    offset: 0,
    length: 0,
    section: 'END',
    sectionId: 1,
    idstr: 'ram',
    instanceId: 0,
    versionId: 4,
  });
  const data = new Uint8Array(PAGE);
  for (let a = 0; a < bytes; a += PAGE) {
    data[0] = a >>> 12;
    data[PAGE - 1] = a >>> 20;
    const flags = RamFlag.RAM_SAVE_FLAG_PAGE | (a ? RamFlag.RAM_SAVE_FLAG_CONTINUE : 0);
    enc.write({ kind: 'ram', op: 'page', offset: 0, length: 0, flags, addr: a, block: 'pc.ram', data });
  }
  enc.write({ kind: 'ram', op: 'eos', offset: 0, length: 0, flags: RamFlag.RAM_SAVE_FLAG_EOS, addr: 0 });
  enc.write({ kind: 'section_footer', offset: 0, length: 0, sectionId: 1 });
  enc.write({ kind: 'eof', offset: 0, length: 1 });
  enc.write({ kind: 'vmdescription', offset: 0, length: 0, json: JSON.stringify({ page_size: PAGE, devices: [] }) });
  enc.finish();
  sink.close();
}
