/**
 * The `tap` group of `npm run bench`: what relaying through `migstream tap` costs.
 *  - relay throughput on loopback: a main-channel stream file sent to a byte-counting sink,
 *    directly and through the tap (which decodes it as it passes);
 *  - a real migration (QEMU 7.2, a 256 MiB guest with 128 MiB of random bytes loaded into its
 *    RAM), direct and through the tap, N runs each, at QEMU's default max-bandwidth and with
 *    it lifted: total time and downtime as the source's query-migrate reports them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeSync, closeSync, statSync } from 'node:fs';

import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePorts, startQemu, type MigrationEnd } from './qemu.js';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

/** How a `migstream tap` run ended: its exit status, what it wrote to stderr, its events. */
export interface TapRun {
  code: number | null;
  err: string;
  events: Record<string, unknown>[];
}

/**
 * `migstream tap --once --format json [EXTRA]` from `listen` to `to`; resolves when it says it
 * listens, with the process and `done`, how it ended.
 */
export async function startTap(
  bin: string,
  listen: number,
  to: number,
  extra: string[] = [],
): Promise<{ proc: ChildProcess; done: Promise<TapRun> }> {
  const proc = spawn(
    process.execPath,
    [bin, 'tap', '--listen', `127.0.0.1:${listen}`, '--to', `127.0.0.1:${to}`, '--once', '--format', 'json', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve) =>
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"listening"')) resolve();
    }),
  );
  const done = new Promise<TapRun>((resolve) =>
    proc.on('close', (code) =>
      resolve({
        code,
        err,
        events: out
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      }),
    ),
  );
  return { proc, done };
}

/**
 * The floor under the tap: a Node process that only relays (source.pipe(destination) both
 * ways, no decoding), one connection, listening on `listen`; resolves when it listens.
 */
async function startPlainRelay(listen: number, to: number): Promise<{ done: Promise<void> }> {
  const script = `
    const net = require('node:net');
    const server = net.createServer((src) => {
      src.pause();
      const dst = net.connect(${to}, '127.0.0.1', () => { src.pipe(dst); dst.pipe(src); src.resume(); });
      src.on('close', () => server.close());
    });
    server.listen(${listen}, '127.0.0.1', () => process.stdout.write('listening\\n'));`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()));
  return { done: new Promise<void>((resolve) => proc.on('close', () => resolve())) };
}

/**
 * Send `file` to 127.0.0.1:`port` and wait until a sink on `sinkPort` has counted all of it;
 * seconds. The sender (`cat` into bash's /dev/tcp) and the sink (a Node process counting
 * bytes) are processes of their own, as a source and a destination QEMU are: in one Node
 * thread together (as this bench had them first) they were the slowest part of the direct
 * path (1.8-2.1 GB/s) and took a core's worth of the two from what they measured.
 */
async function sendThrough(file: string, port: number, sinkPort: number): Promise<number> {
  const size = statSync(file).size;
  const sinkScript = `
    let received = 0;
    const server = require('node:net').createServer((s) => {
      s.on('data', (d) => (received += d.length));
      s.on('end', () => { s.end(); server.close(); process.stdout.write(received + '\\n'); });
    });
    server.listen(${sinkPort}, '127.0.0.1', () => process.stdout.write('ready\\n'));`;
  const sink = spawn(process.execPath, ['-e', sinkScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  sink.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => sink.stdout.on('data', () => out.includes('ready') && resolve()));
  const counted = new Promise<void>((resolve) => sink.on('close', () => resolve()));
  const start = process.hrtime.bigint();
  const sender = spawn('bash', ['-c', 'cat "$0" > "/dev/tcp/127.0.0.1/$1"', file, String(port)], { stdio: 'inherit' });
  await Promise.all([counted, new Promise((resolve) => sender.on('close', resolve))]);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const received = Number(out.split('\n').at(-2));
  if (received !== size) throw new Error(`relay lost bytes: ${received} of ${size}`);
  return seconds;
}

export interface TapBenchLine {
  (line: string): void;
}

/** Relay throughput: the stream file direct to a sink and through the tap, `runs` times each. */
export async function benchRelay(bin: string, file: string, runs: number, out: TapBenchLine): Promise<void> {
  const size = statSync(file).size;
  const direct: number[] = [];
  const plain: number[] = [];
  const tapped: number[] = [];
  let lagged = 0;
  for (let i = 0; i < runs; i++) {
    const [sink = 0] = await freePorts(1);
    direct.push(await sendThrough(file, sink, sink));
    const [plainListen = 0, plainTo = 0] = await freePorts(2);
    const relay = await startPlainRelay(plainListen, plainTo);
    plain.push(await sendThrough(file, plainListen, plainTo));
    await relay.done;
    const [listen = 0, to = 0] = await freePorts(2);
    const tap = await startTap(bin, listen, to);
    tapped.push(await sendThrough(file, listen, to));
    const { events } = await tap.done;
    if (events.some((e) => e['event'] === 'decoder-lagged')) lagged++;
  }
  const gbps = (t: number) => (size / t / 1e9).toFixed(2);
  const fig = (xs: number[]) => `${median(xs).toFixed(3)} s (${gbps(median(xs))} GB/s)`;
  out(
    `tap      relay ${(size / 2 ** 30).toFixed(2)} GiB main channel, loopback   direct ${fig(direct)}  through a plain Node relay (no decoding) ${fig(plain)}  through the tap ${fig(tapped)}, ${runs} runs; the decoder fell behind in ${lagged} of them\n`,
  );
}

/** A real QEMU 7.2 migration, direct and through the tap. */
export async function benchMigration(bin: string, dir: string, runs: number, out: TapBenchLine): Promise<void> {
  mkdirSync(dir, { recursive: true });
  // 128 MiB of random bytes loaded at 64 MiB: pages that are neither zero nor compressible
  const blob = join(dir, 'guest-ram.bin');
  const fd = openSync(blob, 'w');
  for (let i = 0; i < 128; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  const args = [
    '-machine',
    'pc',
    '-m',
    '256M',
    '-nodefaults',
    '-display',
    'none',
    '-accel',
    'tcg',
    '-device',
    `loader,file=${blob},addr=0x4000000,force-raw=on`,
  ];
  let run = 0;
  const once = async (through: boolean, unlimited: boolean): Promise<MigrationEnd & { wall: number }> => {
    const [listen = 0, to = 0] = await freePorts(2);
    // QMP sockets of their own: a killed QEMU leaves its socket file behind
    run++;
    const dst = await startQemu(dir, `dst${run}`, [...args, '-incoming', `tcp:127.0.0.1:${to}`]);
    const tap = through ? await startTap(bin, listen, to) : undefined;
    const src = await startQemu(dir, `src${run}`, args);
    try {
      // QEMU 7.2 limits migration to 128 MiB/s by default; lifted, the relay is what is measured
      if (unlimited) await src.cmd('migrate-set-parameters', { 'max-bandwidth': 10 * 2 ** 30 });
      const start = process.hrtime.bigint();
      await src.cmd('migrate', { uri: `tcp:127.0.0.1:${through ? listen : to}` });
      const end = await src.migration();
      const wall = Number(process.hrtime.bigint() - start) / 1e9;
      if (end.status !== 'completed') throw new Error(`migration ${end.status}: ${src.stderr()} ${dst.stderr()}`);
      const loaded = await dst.migration();
      if (loaded.status !== 'completed') throw new Error(`destination ${loaded.status}: ${dst.stderr()}`);
      if (tap) await tap.done;
      return { ...end, wall };
    } finally {
      await src.quit();
      await dst.quit();
    }
  };
  const fig = (xs: MigrationEnd[]) => ({
    total: median(xs.map((x) => x.totalTime ?? NaN)),
    downtime: median(xs.map((x) => x.downtime ?? NaN)),
  });
  const pct = (a: number, b: number) => `${(((a - b) / b) * 100).toFixed(1)}%`;
  for (const unlimited of [false, true]) {
    const direct: MigrationEnd[] = [];
    const tapped: MigrationEnd[] = [];
    for (let i = 0; i < runs; i++) {
      direct.push(await once(false, unlimited));
      tapped.push(await once(true, unlimited));
    }
    const d = fig(direct);
    const t = fig(tapped);
    const limit = unlimited ? 'max-bandwidth lifted' : "QEMU's default max-bandwidth (128 MiB/s)";
    out(
      `tap      QEMU 7.2 migration, 256 MiB guest (128 MiB random), ${limit}, ${runs} runs each: total-time direct ${d.total} ms, through the tap ${t.total} ms (${pct(t.total, d.total)}); downtime direct ${d.downtime} ms, through the tap ${t.downtime} ms\n`,
    );
  }
}
