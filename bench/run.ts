/**
 * npm run bench: decode throughput and peak RSS on a generated RAM-heavy stream.
 * Not a test; numbers go into issue notes. Usage: node dist/bench/run.js [GiB] [file]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MainChannelEncoder } from '../src/codec/encode.js';
import { openMainStream, roundtripSource } from '../src/codec/open.js';
import { FileSink, StreamWriter } from '../src/io/sink.js';
import { FileSource } from '../src/io/source.js';
import { save } from '../src/generator/save.js';
import { writeRamStream } from '../src/generator/synthetic-ram.js';
import { validateMain } from '../src/loader/validate.js';

/** A VFIO stream whose stop-copy state is `bytes` long (one DEV_DATA_STATE), written as it is generated. */
function generateVfio(path: string, bytes: number): void {
  const sink = new FileSink(path);
  const w = new StreamWriter(sink, 1 << 22);
  const enc = new MainChannelEncoder(w);
  const base = save({ qemu: '8.0', vfio: [{ path: '0000:00:02.0', stopCopy: [1] }] }).main;
  const chunk = new Uint8Array(1 << 20).fill(0x5a);
  for (const rec of base) {
    if (rec.kind === 'vfio_tag' && rec.tag === 'DEV_DATA_STATE') {
      enc.write({ ...rec, size: bytes });
      for (let left = bytes; left > 0; left -= chunk.length)
        enc.write({ kind: 'vfio_data', offset: 0, length: 0, data: chunk.subarray(0, Math.min(left, chunk.length)) });
    } else if (rec.kind !== 'vfio_data') enc.write(rec);
  }
  enc.finish();
  sink.close();
}

function child(mode: string, path: string): void {
  const t0 = process.hrtime.bigint();
  let n = 0;
  if (mode === 'validate') {
    const r = validateMain(new FileSource(path), { qemuVersion: '8.0' });
    if (!r.valid) throw new Error(JSON.stringify(r.diagnostics));
    n = r.diagnostics.length;
  } else if (mode === 'decode') {
    const s = openMainStream(new FileSource(path));
    for (const _ of s.records()) n++;
  } else if (mode === 'roundtrip') {
    const r = roundtripSource(new FileSource(path), new FileSource(path));
    if (!r.identical) throw new Error('round trip differs');
    n = r.records;
  } else {
    const fd = openSync(path, 'r');
    const buf = new Uint8Array(1 << 22);
    let pos = 0;
    for (;;) {
      const k = readSync(fd, buf, 0, buf.length, pos);
      if (!k) break;
      pos += k;
    }
    closeSync(fd);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const size = statSync(path).size;
  process.stdout.write(
    JSON.stringify({
      mode,
      seconds: s,
      gbPerSecond: size / s / 1e9,
      records: n,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  );
}

function main(): void {
  const [, , a1, a2, a3] = process.argv;
  if (a1 === '--child') {
    if (a2 === undefined || a3 === undefined) throw new Error('bench --child MODE FILE');
    child(a2, a3);
    return;
  }
  const gib = Number(a1 ?? '1');
  const path = a2 ?? join(tmpdir(), `migstream-bench-${gib}g.mig`);
  if (!existsSync(path)) {
    process.stdout.write(`generating ${path} (${gib} GiB of pages)...\n`);
    writeRamStream(path, Math.round(gib * 2 ** 30));
  }
  const self = fileURLToPath(import.meta.url);
  for (const mode of ['read-loop', 'decode', 'roundtrip']) {
    // warm the page cache, then measure
    const r = spawnSync(process.execPath, [self, '--child', mode, path], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    process.stdout.write(r.stdout);
  }
  if (!a2 && process.env.MIGSTREAM_BENCH_KEEP !== '1') unlinkSync(path);

  // VFIO: 4 GiB of DEV_DATA_STATE through the reference loader
  const vfio = join(tmpdir(), `migstream-bench-vfio-${gib * 4}g.mig`);
  if (!existsSync(vfio)) {
    process.stdout.write(`generating ${vfio} (${gib * 4} GiB of VFIO device state)...\n`);
    generateVfio(vfio, Math.round(gib * 4 * 2 ** 30));
  }
  const r = spawnSync(process.execPath, [self, '--child', 'validate', vfio], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  process.stdout.write(r.stdout);
  if (process.env.MIGSTREAM_BENCH_KEEP !== '1') unlinkSync(vfio);
}

main();
