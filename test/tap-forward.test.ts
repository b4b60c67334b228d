import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from '../bench/qemu.js';
import { startTap } from '../bench/tap.js';
import { ForwardRing } from '../src/app/tap-forward.js';
import { writeRamStream } from '../src/generator/synthetic-ram.js';
import { ROOT } from './helpers.js';

/**
 * The tap's forwarding path (src/app/tap-forward.ts): the source read straight into a ring that
 * the destination, the save file and the decoder take the bytes from. What it must keep: every
 * byte, in order; a slow destination slows the source (memory stays bounded by the ring); a
 * decoder that falls behind is dropped, never waited for.
 */
const BIN = join(ROOT, 'bin', 'migstream');
const dir = mkdtempSync(join(tmpdir(), 'migstream-tap-forward-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

/** A destination that reads nothing until `start` is called, then reads to the end; the hash and size of what it got. */
function stoppedDestination(port: number) {
  let server: Server | undefined;
  let reading = false;
  let accepted: Socket | undefined;
  const start = () => {
    reading = true;
    accepted?.resume();
  };
  const got = new Promise<{ sha1: string; bytes: number }>((resolve) => {
    server = createServer({ pauseOnConnect: true }, (s) => {
      const hash = createHash('sha1');
      let bytes = 0;
      s.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
      });
      s.on('end', () => {
        s.end();
        server?.close();
        resolve({ sha1: hash.digest('hex'), bytes });
      });
      accepted = s;
      if (reading) s.resume();
    });
    server.listen(port, '127.0.0.1');
  });
  return { got, start };
}

/** The most the kernel may buffer on a loopback connection, both ends (net.ipv4.tcp_rmem and tcp_wmem maxima). */
function socketBuffers(): number {
  const max = (name: string) => Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
  return max('tcp_rmem') + max('tcp_wmem');
}

/** Send `bytes` in 1 MiB writes, each only after the one before was taken by the kernel; `taken` counts them. */
function send(c: Socket, bytes: Buffer) {
  const sender = { taken: 0 };
  const next = (at: number) => {
    if (at >= bytes.length) {
      c.end();
      return;
    }
    const piece = bytes.subarray(at, at + (1 << 20));
    c.write(piece, () => {
      sender.taken += piece.length;
      next(at + piece.length);
    });
  };
  next(0);
  return sender;
}

describe('tap: the forwarding ring', () => {
  it('a destination that stops reading stops the source: the tap holds no more than its ring, and every byte arrives in order, decoded as it passed', async () => {
    // what may be on its way while the destination reads nothing: the tap's ring (64 MiB), the
    // kernel's buffers of both connections (source to tap, tap to destination), one write
    const bound = (64 << 20) + 2 * socketBuffers() + (1 << 20);
    // a stream bigger than that: a tap that read on regardless would take all of it
    const file = join(dir, 'ram.mig');
    writeRamStream(file, bound + (32 << 20));
    const bytes = readFileSync(file);
    const [listen = 0, to = 0] = await freePorts(2);
    const destination = stoppedDestination(to);
    const save = join(dir, 'save');
    const tap = await startTap(BIN, listen, to, ['--save', save]);
    const c = connect(listen, '127.0.0.1');
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    c.resume();
    const sender = send(c, bytes);
    // while the destination reads nothing, what the source gets rid of is bounded, not by the stream's size
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const whileStopped = sender.taken;
    expect(whileStopped).toBeLessThanOrEqual(bound);
    expect(whileStopped).toBeGreaterThan(0);
    destination.start();
    const received = await destination.got;
    expect(received.bytes).toBe(bytes.length);
    expect(received.sha1).toBe(sha1(bytes));
    const run = await tap.done;
    expect(run.code).toBe(0);
    expect(run.err).toBe('');
    const events = run.events as { event: string; status?: string; channels?: Record<string, number> }[];
    // the decoder kept up (it was the destination that was slow) and saw the stream to its end
    expect(events.filter((e) => e.event === 'decoder-lagged')).toEqual([]);
    expect(events.filter((e) => e.event === 'eof')).toHaveLength(1);
    const summary = events.at(-1);
    expect(summary?.status).toBe('completed');
    expect(summary?.channels).toEqual({ main: bytes.length });
    expect(statSync(join(save, 'main.mig')).size).toBe(bytes.length);
    expect(sha1(readFileSync(join(save, 'main.mig')))).toBe(sha1(bytes));
  }, 120_000);

  it('a decoder that does not read is dropped once it is a ring behind; the relay goes on and loses nothing', async () => {
    const capacity = 1 << 20;
    const [listen = 0, to = 0] = await freePorts(2);
    const destination = stoppedDestination(to);
    destination.start();
    const lagged: number[] = [];
    let adopted = false;
    const server = createServer({ pauseOnConnect: true }, (accepted) => {
      const destination = connect(to, '127.0.0.1');
      const ring: ForwardRing = new ForwardRing(capacity, destination, {
        bytes: () => undefined,
        lagged: () => lagged.push(ring.received),
      });
      const source = ring.adopt(accepted);
      adopted = source !== undefined;
      if (!source) return;
      // the destination is connecting: the bytes go on to it as they are read
      ring.forward();
      // a decoder that never takes a byte
      const feed = ring.decode();
      expect(feed.input.ring).toBe(ring.ring);
      source.on('end', () => {
        ring.end();
        destination.end();
        server.close();
      });
      destination.once('connect', () => source.resume());
    });
    await new Promise<void>((resolve) => server.listen(listen, '127.0.0.1', () => resolve()));
    const bytes = Buffer.alloc(16 << 20);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i, i);
    const c = connect(listen, '127.0.0.1', () => c.end(bytes));
    c.resume();
    const received = await destination.got;
    expect(adopted).toBe(true);
    expect(received.bytes).toBe(bytes.length);
    expect(received.sha1).toBe(sha1(bytes));
    // dropped once, when the ring (less the little kept free) had filled up behind it
    expect(lagged).toHaveLength(1);
    expect(lagged[0]).toBeGreaterThanOrEqual(capacity - (256 << 10));
    expect(lagged[0]).toBeLessThanOrEqual(capacity);
  }, 60_000);

  it('a connection that closes without a byte is not relayed; the others go on in the order the source made them, each once it has sent a byte', async () => {
    const [listen = 0, to = 0] = await freePorts(2);
    // the destination: the first bytes of each connection, in the order it accepted them
    const accepted: string[] = [];
    const closed: Promise<void>[] = [];
    const server = createServer((s) => {
      let first = '';
      const index = accepted.push('') - 1;
      s.on('data', (d: Buffer) => {
        first += d.toString('latin1');
        accepted[index] = first.slice(0, 4);
      });
      closed.push(
        new Promise((resolve) =>
          s.on('end', () => {
            s.end();
            resolve();
          }),
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(to, '127.0.0.1', () => resolve()));
    const tap = await startTap(BIN, listen, to);
    const open = async () => {
      const c = connect(listen, '127.0.0.1');
      await new Promise<void>((resolve) => c.once('connect', () => resolve()));
      c.resume();
      return c;
    };
    // an empty connection (a port check), then one that speaks late, then one that speaks at once
    const empty = await open();
    empty.end();
    const late = await open();
    const early = await open();
    early.write('BBBB-early');
    await new Promise((resolve) => setTimeout(resolve, 300));
    late.write('AAAA-late');
    await new Promise((resolve) => setTimeout(resolve, 200));
    late.end();
    early.end();
    const run = await tap.done;
    await Promise.all(closed);
    server.close();
    // the empty one never reached the destination; the late one went first, as the source made it
    expect(accepted).toEqual(['AAAA', 'BBBB']);
    const connections = run.events.filter((e) => e['event'] === 'connection');
    expect(connections).toHaveLength(2);
    const summary = run.events.at(-1) as { channels: Record<string, number> };
    expect(Object.values(summary.channels).sort((a, b) => a - b)).toEqual([9, 10]);
  }, 60_000);
});
