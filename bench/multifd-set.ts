/**
 * A multifd set for the bench: a main channel and N multifd channels carrying `bytes` of guest
 * RAM in 128-page packets, dealt round the channels, uncompressed or zlib as QEMU's
 * multifd-zlib writes it (one deflate stream per channel, Z_SYNC_FLUSH at the end of each
 * packet). Made by the save engine (`migstream gen`) from the model `migstream model` takes from
 * the recorded QEMU 7.2 set fixtures/real/qemu-7.2/pc-multifd-tcp, with its pc.ram grown to
 * `bytes` and the packets rewritten, so that the main channel's RAM rounds and every channel's
 * SYNC packets agree as QEMU's do. Each page is 2 KiB of pseudo-random bytes and 2 KiB of
 * zeros: zlib halves it, as guest memory often is.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants, createDeflate } from 'node:zlib';
import type { MachineModel, MultifdPacketModel } from '../src/generator/model.js';

const PAGE = 4096;
/** pages per packet: MULTIFD_PACKET_BYTES_OF_PAGES (512 KiB) of 4 KiB pages */
const PACKET_PAGES = 128;

export interface MultifdSet {
  main: string;
  channels: string[];
}

export async function writeMultifdSet(
  root: string,
  bin: string,
  dir: string,
  name: string,
  bytes: number,
  channelCount: number,
  compression: 'none' | 'zlib',
): Promise<MultifdSet> {
  const recorded = join(root, 'fixtures', 'real', 'qemu-7.2', 'pc-multifd-tcp');
  const modelPath = join(dir, `${name}.model.json`);
  run(bin, [
    'model',
    `${recorded}.mig`,
    '--multifd',
    `${recorded}.multifd0.bin`,
    '--multifd',
    `${recorded}.multifd1.bin`,
    '-o',
    modelPath,
  ]);
  const model = JSON.parse(readFileSync(modelPath, 'utf8')) as MachineModel;
  const pages = Math.ceil(bytes / PAGE);
  const image = join(dir, `${name}.pc-ram.img`);
  writeImage(image, pages);
  const block = model.ram.blocks[0];
  if (!model.multifd || block?.idstr !== 'pc.ram')
    throw new Error(`${recorded}: not the recorded multifd set expected`);
  block.usedLength = pages * PAGE;
  block.image = image;
  // pc.ram's pages all go over the channels; the main channel keeps the other blocks' pages
  for (const it of model.ram.iterations) it.runs = it.runs.filter((r) => r.block !== 0);
  model.ram.complete.runs = model.ram.complete.runs.filter((r) => r.block !== 0);
  // as the recording: every channel's SYNC for the setup round, the pages, then a SYNC for each later round
  const channels: { packets: MultifdPacketModel[] }[] = Array.from({ length: channelCount }, () => ({ packets: [] }));
  let num = 0;
  for (const ch of channels) ch.packets.push({ num: num++, sync: true });
  for (let first = 0, c = 0; first < pages; first += PACKET_PAGES, c = (c + 1) % channelCount)
    channels[c]?.packets.push({ num: num++, block: 0, pages: [[first, Math.min(PACKET_PAGES, pages - first)]] });
  for (let round = 0; round < 2; round++) for (const ch of channels) ch.packets.push({ num: num++, sync: true });
  model.multifd.channels = channels;
  model.multifd.compression = compression;
  if (compression === 'zlib') {
    model.ram.encodedFile = join(dir, `${name}.encoded.bin`);
    await deflatePackets(image, channels, model.ram.encodedFile);
  }
  writeFileSync(modelPath, JSON.stringify(model));
  const main = join(dir, `${name}.mig`);
  run(bin, ['gen', modelPath, '-o', main]);
  return { main, channels: channels.map((_, i) => join(dir, `${name}.multifd${i}.bin`)) };
}

function run(bin: string, args: string[]): void {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`migstream ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
}

/** `pages` pages, each 2 KiB of xorshift32 output then 2 KiB of zeros, written 4 MiB at a time. */
function writeImage(path: string, pages: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 22);
  let x = 0x9e3779b9;
  for (let page = 0; page < pages;) {
    const n = Math.min(pages - page, chunk.length / PAGE);
    for (let p = 0; p < n; p++)
      for (let i = 0; i < PAGE / 2; i += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk.writeInt32LE(x | 0, p * PAGE + i);
      }
    writeSync(fd, chunk, 0, n * PAGE);
    page += n;
  }
  closeSync(fd);
}

/** Each channel's packets through one deflate stream (level 1), flushed per packet; payloads appended to `out`. */
async function deflatePackets(
  image: string,
  channels: { packets: MultifdPacketModel[] }[],
  out: string,
): Promise<void> {
  const img = openSync(image, 'r');
  const enc = openSync(out, 'w');
  let at = 0;
  for (const ch of channels) {
    const deflate = createDeflate({ level: 1 });
    let pieces: Buffer[] = [];
    deflate.on('data', (b: Buffer) => pieces.push(b));
    for (const p of ch.packets) {
      const run = p.pages?.[0];
      if (!run) continue;
      const data = Buffer.alloc(run[1] * PAGE);
      readSync(img, data, 0, data.length, run[0] * PAGE);
      deflate.write(data);
      await new Promise<void>((resolve) => deflate.flush(constants.Z_SYNC_FLUSH, () => resolve()));
      const payload = Buffer.concat(pieces);
      pieces = [];
      writeSync(enc, payload);
      p.payload = [at, payload.length];
      p.normal = run[1];
      at += payload.length;
    }
    deflate.end();
  }
  closeSync(img);
  closeSync(enc);
}
