import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, startQemu } from '../bench/qemu.js';
import { startTap as startTapIn } from '../bench/tap.js';
import { hasQemu, hasQemu72, ROOT } from './helpers.js';
import { hasScript, terminalEnv } from './terminal.js';
import { decode } from '../src/app/decode.js';
import { messageFields, ReturnPathWatcher } from '../src/app/tap-return-path.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource } from '../src/io/source.js';
import { decodeReturnPath } from '../src/returnpath/codec.js';
import { decodeMultifdChannel } from '../src/multifd/codec.js';
import { MultifdFlag } from '../grammar/multifd.js';

/**
 * `migstream tap` between two real QEMU 7.2 processes on loopback: the source migrates to the
 * tap, the tap relays to the destination's -incoming, and decodes as the bytes pass.
 */
const BIN = join(ROOT, 'bin', 'migstream');
const QEMU = ['-machine', 'pc', '-m', '32M', '-nodefaults', '-display', 'none', '-accel', 'tcg'];
const dir = mkdtempSync(join(tmpdir(), 'migstream-tap-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  if (!process.env['KEEP_TAP']) rmSync(dir, { recursive: true, force: true });
});

/** A QEMU of the common arguments plus ARGS, killed after the suite; `migration` gives query-migrate's final status. */
async function qemu(name: string, args: string[]) {
  const q = await startQemu(dir, name, [...QEMU, ...args]);
  children.push(q.proc);
  return { ...q, migration: async () => (await q.migration()).status };
}

async function freePortPair(): Promise<[number, number]> {
  const [a = 0, b = 0] = await freePorts(2);
  return [a, b];
}

/** `migstream tap --once --save DIR --format json`, started and listening; `done` gives its exit status and events. */
async function startTap(listen: number, to: number, save: string, extra: string[] = []) {
  const t = await startTapIn(BIN, listen, to, ['--save', save, ...extra]);
  children.push(t.proc);
  return t;
}

/**
 * A migration's channels (main first) sent through `migstream tap` (started with EXTRA) into a
 * destination that reads each connection to its end; what the tap printed and its exit status.
 */
async function throughTap(save: string, channels: Buffer[], extra: string[] = []) {
  const [listen, to] = await freePortPair();
  const sink = createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  sink.listen(to, '127.0.0.1');
  const t = await startTap(listen, to, save, extra);
  // every channel open before any ends (the tap's migration ends when its last channel closes), in order
  const sockets = [];
  for (const bytes of channels) {
    const c = connect(listen, '127.0.0.1');
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    c.resume();
    c.write(bytes);
    sockets.push(c);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const c of sockets) c.end();
  const done = await t.done;
  sink.close();
  return done;
}

/** `migstream validate ARGS` accepts what the tap saved, and the main channel (ARGS[0]) round-trips byte for byte. */
function expectValid(...args: string[]): void {
  const v = spawnSync(process.execPath, [BIN, 'validate', ...args], { encoding: 'utf8' });
  expect(v.stdout).toContain('valid (0 diagnostics)');
  const rt = spawnSync(process.execPath, [BIN, 'roundtrip', args[0] ?? ''], { encoding: 'utf8' });
  expect(rt.stdout).toContain('identical');
}

/** The destination loaded the migration; then both QEMUs quit. */
async function expectLoaded(src: Awaited<ReturnType<typeof qemu>>, dst: Awaited<ReturnType<typeof qemu>>) {
  expect(await dst.migration()).toBe('completed');
  await src.quit();
  await dst.quit();
}

describe('the return path decoded as it passes', () => {
  it('a real capture fed one byte at a time gives the messages decoding it whole gives', () => {
    const bytes = readFileSync(join(ROOT, 'fixtures', 'recorded-7.2', 'pc-postcopy-tap.return-path.bin'));
    const whole = [...decodeReturnPath(new StreamReader(new BufferSource(bytes)))];
    const w = new ReturnPathWatcher();
    const live = [];
    for (let i = 0; i < bytes.length; i++) live.push(...w.push(bytes.subarray(i, i + 1)));
    expect(w.failed).toBeUndefined();
    expect(live.map((r) => [r.offset, r.name, messageFields(r)])).toEqual(
      whole.map((r) => [r.offset, r.name, messageFields(r)]),
    );
    // PONG 1, 2, 4, a page request for pc.ram, PONG 3, SHUT 0 (fixtures/recorded-7.2/README.md)
    expect(live.map((r) => r.name)).toEqual([
      'MIG_RP_MSG_PONG',
      'MIG_RP_MSG_PONG',
      'MIG_RP_MSG_PONG',
      'MIG_RP_MSG_REQ_PAGES_ID',
      'MIG_RP_MSG_PONG',
      'MIG_RP_MSG_SHUT',
    ]);
  });
  it('a message whose length does not fit its type stops the decoding, and says why', () => {
    const w = new ReturnPathWatcher();
    // an unknown type is kept (its payload raw); the first 2 bytes of the next header wait for the rest
    expect(w.push(new Uint8Array([0x00, 0x63, 0x00, 0x00, 0x00, 0x02]))).toHaveLength(1);
    expect(w.failed).toBeUndefined();
    // MIG_RP_MSG_PONG (2) with a length of 2: a PONG carries a be32
    expect(w.push(new Uint8Array([0x00, 0x02, 0xff, 0xff]))).toEqual([]);
    expect(w.failed).toContain('return-path message @0x4');
  });
});

describe('migstream tap between two plain sockets', () => {
  it('--stop-on-error forwards all of a valid stream to a destination that waits for its end, then exits', async () => {
    const [listen, to] = await freePortPair();
    const file = join(ROOT, 'fixtures', 'real', 'qemu-7.2', 'pc-paused.mig');
    const sent = readFileSync(file);
    // the destination reads until the end of its input before it closes (the tap must end it)
    const received = new Promise<Buffer>((resolve) => {
      const server = createServer((s) => {
        const parts: Buffer[] = [];
        s.on('data', (d: Buffer) => parts.push(d));
        s.on('end', () => {
          s.end();
          server.close();
          resolve(Buffer.concat(parts));
        });
      });
      server.listen(to, '127.0.0.1');
    });
    const t = await startTap(listen, to, join(dir, 'plain'), ['--machine', 'pc-i440fx-7.2', '--stop-on-error']);
    const c = connect(listen, '127.0.0.1', () => c.end(sent));
    c.resume();
    expect((await received).equals(sent)).toBe(true);
    const { code, events } = await t.done;
    expect(code).toBe(0);
    expect((events.at(-1) as { status: string }).status).toBe('completed');
  }, 60_000);
});

describe('what the tap tells of a main channel (plain sockets, recordings)', () => {
  type Event = Record<string, unknown> & { event: string; offset: number };
  it("phases in order, RAM's rounds as QEMU 7.2 counted its pages, each section's bytes header to footer", async () => {
    const base = join(ROOT, 'fixtures', 'real', 'qemu-7.2', 'pc-dirty-iterations');
    const bytes = readFileSync(`${base}.mig`);
    // the source's query-migrate at the end of the recorded migration (a running guest, 16 bitmap syncs)
    const ram = (
      JSON.parse(readFileSync(`${base}.meta.json`, 'utf8')) as {
        src_info: { ram: { total: number; normal: number; duplicate: number; 'page-size': number } };
      }
    ).src_info.ram;
    const run = await throughTap(join(dir, 'watch'), [bytes]);
    expect(run.code).toBe(0);
    const events = run.events as Event[];
    expect(events.filter((e) => e.event === 'phase').map((e) => e['phase'])).toEqual([
      'iterating',
      'stop-and-copy',
      'completed',
    ]);
    const rounds = events.filter((e) => e.event === 'ram-round').map((e) => e['pages'] as number);
    // the first round is the bulk stage: every page of every RAMBlock once
    expect(rounds[0]).toBe(ram.total / ram['page-size']);
    // QEMU counts each page it sends: normal pages and zero pages ("duplicate")
    expect(rounds.reduce((a, b) => a + b, 0)).toBe(ram.normal + ram.duplicate);
    expect(rounds.length).toBeGreaterThan(1);
    // the stop: the first END section; every section ends with its footer (0x7e, its be32 section id)
    const stop = events.find((e) => e.event === 'phase' && e['phase'] === 'stop-and-copy');
    const firstEnd = events.find((e) => e.event === 'section' && e['section'] === 'END');
    expect(stop?.offset).toBe(firstEnd?.offset);
    const starts = events.filter((e) => e.event === 'section');
    const ends = events.filter((e) => e.event === 'section-end');
    expect(ends.map((e) => [e.offset, e['sectionId']])).toEqual(starts.map((e) => [e.offset, e['sectionId']]));
    for (const e of ends) {
      const footer = e.offset + (e['bytes'] as number) - 5;
      expect(bytes[footer], `section at ${e.offset}`).toBe(0x7e);
      expect(bytes.readUInt32BE(footer + 1)).toBe(e['sectionId']);
    }
    // the sections and what lies between them (header, configuration, EOF, vmdescription) are the whole channel
    const inSections = ends.reduce((a, e) => a + (e['bytes'] as number), 0);
    expect(inSections).toBeLessThan(bytes.length);
    expect(inSections).toBeGreaterThan(bytes.length * 0.9);
  }, 60_000);

  it('VFIO tags as the decoder reads them in the same stream, with the device they belong to', async () => {
    const file = join(ROOT, 'fixtures', 'vfio', 'v2-two-devices-11.1.mig');
    const events = (await throughTap(join(dir, 'vfio-tags'), [readFileSync(file)])).events as Event[];
    const expected: [number, string, string][] = [];
    let idstr = '';
    for await (const rec of decode(file)) {
      if (rec.kind === 'section') idstr = rec.idstr;
      if (rec.kind === 'vfio_tag') expected.push([rec.offset, `VFIO_MIG_FLAG_${rec.tag ?? '?'}`, idstr]);
    }
    expect(expected.length).toBeGreaterThan(4);
    expect(new Set(expected.map((t) => t[2])).size).toBe(2);
    expect(events.filter((e) => e.event === 'vfio-tag').map((e) => [e.offset, e['tag'], e['idstr']])).toEqual(expected);
  }, 60_000);
});

describe('multifd channels judged as they pass (plain sockets, a recorded multifd set)', () => {
  it('SYNC packets are reported per channel, and a broken packet as validate reports the saved channel', async () => {
    const base = join(ROOT, 'fixtures', 'real', 'qemu-7.2', 'pc-multifd-tcp');
    const main = readFileSync(`${base}.mig`);
    const ch0 = readFileSync(`${base}.multifd0.bin`);
    const ch1 = Buffer.from(readFileSync(`${base}.multifd1.bin`));
    // the be32 version of multifd1's first packet (MultiFDInit is 64 bytes; the packet's magic, then its version): 1 -> 2
    expect(ch1.readUInt32BE(68)).toBe(1);
    ch1[71] = 2;
    const save = join(dir, 'multifd-live');
    const { code, err, events } = await throughTap(save, [main, ch0, ch1]);
    expect(err).toBe('');
    expect(code).toBe(1);
    for (const [channel, bytes] of [
      ['multifd0', ch0],
      ['multifd1', ch1],
    ] as const) {
      const syncs = [...decodeMultifdChannel(new StreamReader(new BufferSource(bytes)), 4096)].flatMap((r) =>
        r.kind === 'multifd_packet' && r.header.flags & MultifdFlag.MULTIFD_FLAG_SYNC ? [r.offset] : [],
      );
      expect(syncs.length, channel).toBeGreaterThan(0);
      expect(
        events.filter((e) => e['event'] === 'multifd-sync' && e['channel'] === channel).map((e) => e['offset']),
        channel,
      ).toEqual(syncs);
    }
    // the live diagnostics are those of the channel as saved, validated on its own (and none of main or multifd0)
    const saved = join(save, 'main.multifd1.bin');
    expect(readFileSync(saved).equals(ch1)).toBe(true);
    const offline = JSON.parse(
      spawnSync(process.execPath, [BIN, 'validate', '--format', 'json', saved], { encoding: 'utf8' }).stdout,
    ) as { diagnostics: { rule: string; offset: number; message: string }[] };
    expect(offline.diagnostics.map((d) => d.rule)).toEqual(['multifd/packet-version']);
    const live = events.flatMap((e) =>
      e['event'] === 'diagnostic' ? [e['diagnostic'] as Record<string, unknown>] : [],
    );
    expect(live.map((d) => [d['channel'], d['rule'], d['offset'], d['message']])).toEqual(
      offline.diagnostics.map((d) => ['multifd1', d.rule, d.offset, d.message]),
    );
    expect((events.at(-1) as { status: string }).status).toBe('failed');
  }, 60_000);
});

describe('tap --mutate on multifd channels (plain sockets, a recorded multifd set)', () => {
  const base = join(ROOT, 'fixtures', 'real', 'qemu-7.2', 'pc-multifd-tcp');
  const originals = {
    main: readFileSync(`${base}.mig`),
    multifd0: readFileSync(`${base}.multifd0.bin`),
    multifd1: readFileSync(`${base}.multifd1.bin`),
  };
  /** the set through `tap --mutate SEED --mutations 2`; the mutations it reports (what was forwarded is saved in SAVE) */
  async function mutatedRun(seed: number, save: string) {
    const { err, events } = await throughTap(
      save,
      [originals.main, originals.multifd0, originals.multifd1],
      ['--mutate', String(seed), '--mutations', '2'],
    );
    expect(err).toBe('');
    return events.filter((e) => e['event'] === 'mutation') as { channel: string; offset: number; what: string }[];
  }

  it('breaks packet magics on their way, each channel its own draw: the same seed, the same mutations; what was forwarded differs at those bytes only, validate refuses it there, and QEMU 7.2 never completes it', async () => {
    const save = join(dir, 'mutate-multifd');
    const mutations = await mutatedRun(7, save);
    const again = await mutatedRun(7, join(dir, 'mutate-multifd-again'));
    // the channels' bytes arrive interleaved as the sockets deliver them, and so are the events
    // of different channels: each channel's draws still do not depend on it
    const byChannel = (ms: typeof mutations) =>
      [...ms].sort((a, b) => a.channel.localeCompare(b.channel) || a.offset - b.offset);
    expect(byChannel(again)).toEqual(byChannel(mutations));
    const multifd = mutations.filter((m) => m.channel.startsWith('multifd'));
    expect(multifd.length).toBeGreaterThan(0);
    for (const channel of ['main', 'multifd0', 'multifd1'] as const) {
      const saved = readFileSync(join(save, channel === 'main' ? 'main.mig' : `main.${channel}.bin`));
      const original = originals[channel];
      expect(saved.length).toBe(original.length);
      const changed = [...saved.keys()].filter((i) => saved[i] !== original[i]);
      expect(changed, channel).toEqual(mutations.filter((m) => m.channel === channel).map((m) => m.offset));
    }
    for (const m of multifd) {
      const saved = join(save, `main.${m.channel}.bin`);
      // the packet's be32 magic, its high byte changed (MULTIFD_MAGIC 0x11223344)
      expect(originals[m.channel as 'multifd0' | 'multifd1'].readUInt32BE(m.offset)).toBe(0x11223344);
      expect(readFileSync(saved)[m.offset]).toBe(0x7f);
      const v = JSON.parse(
        spawnSync(process.execPath, [BIN, 'validate', '--format', 'json', saved], { encoding: 'utf8' }).stdout,
      ) as {
        diagnostics: { rule: string; offset: number }[];
      };
      // the first broken packet of the channel ends its decoding
      const first = Math.min(...multifd.filter((x) => x.channel === m.channel).map((x) => x.offset));
      expect(v.diagnostics.map((d) => [d.rule, d.offset])).toEqual([['stream/bad-magic', first]]);
    }
    if (hasQemu72) {
      // QEMU 7.2 given the recording's main channel with the multifd channels as recorded, then as forwarded:
      // the first completes; with a broken packet magic its receiving thread stops, and the
      // migration never completes (qemu-load's exit 3; 7.2 prints nothing about it)
      const load = (ch0: string, ch1: string) =>
        spawnSync(
          process.execPath,
          [
            join(ROOT, 'bin', 'qemu-load'),
            '--capability',
            'multifd',
            '--parameter',
            'multifd-channels=2',
            '--timeout',
            '8000',
            '--multifd',
            ch0,
            '--multifd',
            ch1,
            `${base}.mig`,
          ],
          { encoding: 'utf8', timeout: 60_000 },
        );
      const recorded = load(`${base}.multifd0.bin`, `${base}.multifd1.bin`);
      expect(recorded.status, recorded.stderr).toBe(0);
      const forwarded = load(join(save, 'main.multifd0.bin'), join(save, 'main.multifd1.bin'));
      expect(forwarded.status, forwarded.stderr).toBe(3);
    }
  }, 90_000);
});

describe.skipIf(!hasScript)('migstream tap at a terminal', () => {
  it.each([200, 80])(
    'shows a status line under the events, rewritten in place, and clears it before the summary (%i columns)',
    async (columns) => {
      const [listen, to] = await freePortPair();
      const sent = readFileSync(join(ROOT, 'fixtures', 'real', 'qemu-7.2', 'pc-paused.mig'));
      const sink = createServer((s) => {
        s.resume();
        s.on('end', () => {
          s.end();
          sink.close();
        });
      });
      sink.listen(to, '127.0.0.1');
      const line = [BIN, 'tap', '--listen', `127.0.0.1:${listen}`, '--to', `127.0.0.1:${to}`, '--once']
        .map((a) => `'${a}'`)
        .join(' ');
      // 200 columns: every part of the line; 80: the details go first, and no line is wider than the terminal
      const proc = spawn('script', ['-qec', `stty cols ${columns}; ${process.execPath} ${line}`, '/dev/null'], {
        env: terminalEnv({ NO_COLOR: '1' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(proc);
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 400 && !out.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 25));
      // the stream in 16 pieces over about two seconds: long enough for several status lines
      const c = connect(listen, '127.0.0.1');
      const piece = Math.ceil(sent.length / 16);
      for (let at = 0; at < sent.length; at += piece) {
        c.write(sent.subarray(at, at + piece));
        await new Promise((r) => setTimeout(r, 120));
      }
      c.end();
      c.resume();
      await new Promise((resolve) => proc.on('close', resolve));
      const statuses = [
        ...out.matchAll(
          /(setup|iterating|stop-and-copy|postcopy|completed)(?: · [^|]*)? \| main ([\d.]+ (?:B|KiB|MiB)) \| [\d.]+ (?:B|KiB|MiB)\/s \| (\d+) sections((?: · [^|]*)?) \| [\d.]+ s/g,
        ),
      ];
      expect(statuses.length).toBeGreaterThanOrEqual(3);
      // the sections seen only grow
      const counts = statuses.map((m) => Number(m[3]));
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      // the phase only moves on; a recording of RAM's PART sections shows the source iterating
      const order = ['setup', 'iterating', 'stop-and-copy', 'postcopy', 'completed'];
      const phases = statuses.map((m) => order.indexOf(m[1] ?? ''));
      expect(phases).toEqual([...phases].sort((a, b) => a - b));
      for (const m of statuses) expect(m[0].length).toBeLessThan(columns);
      if (columns === 200) {
        expect(statuses.some((m) => m[1] === 'iterating' && / · iteration \d+/.test(m[0]))).toBe(true);
        // once RAM's first section has ended, its bytes are among the biggest
        expect(statuses.some((m) => / · ram [\d.]+ (?:B|KiB|MiB)/.test(m[4] ?? ''))).toBe(true);
      }
      const summary = out.indexOf('migration completed');
      const lastStatus = statuses.at(-1)?.index ?? Infinity;
      expect(summary).toBeGreaterThan(lastStatus);
      expect(out.slice(lastStatus, summary)).toContain('\u001b[2K');
      expect(out).toContain(`main ${sent.length} bytes`);
    },
    60_000,
  );
});

describe.skipIf(!hasQemu)('migstream tap with QEMU 7.2 on loopback', () => {
  it('relays a precopy migration of a running guest, decodes it as it passes and saves what it relayed', async () => {
    const [listen, to] = await freePortPair();
    const save = join(dir, 'precopy');
    const dst = await qemu('dst', ['-incoming', `tcp:127.0.0.1:${to}`]);
    const t = await startTap(listen, to, save);
    const src = await qemu('src', []);
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('completed');
    const { ram } = (await src.cmd('query-migrate'))['return'] as {
      ram: { total: number; normal: number; duplicate: number; 'page-size': number };
    };
    const { code, err, events } = await t.done;
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(events.filter((e) => e['event'] === 'phase').map((e) => e['phase'])).toEqual([
      'iterating',
      'stop-and-copy',
      'completed',
    ]);
    // RAM's rounds as the source counted its pages: the bulk round every page once, then the dirty ones
    const rounds = events.filter((e) => e['event'] === 'ram-round').map((e) => e['pages'] as number);
    expect(rounds[0]).toBe(ram.total / ram['page-size']);
    expect(rounds.reduce((a, b) => a + b, 0)).toBe(ram.normal + ram.duplicate);
    const summary = events.at(-1) as {
      event: string;
      status: string;
      channels: Record<string, number>;
      diagnostics: unknown[];
    };
    expect(summary.event).toBe('migration');
    expect(summary.status).toBe('completed');
    expect(summary.diagnostics).toEqual([]);
    // what was relayed is what was saved, and it is a stream migstream accepts as it stands
    const main = join(save, 'main.mig');
    expect(summary.channels['main']).toBe(statSync(main).size);
    expect(events.filter((e) => e['event'] === 'connection').map((e) => e['channel'])).toEqual(['main']);
    expect(events.some((e) => e['event'] === 'section' && e['idstr'] === 'ram')).toBe(true);
    expect(events.filter((e) => e['event'] === 'eof')).toHaveLength(1);
    expectValid(main);
    await expectLoaded(src, dst);
    expect(readFileSync(main).subarray(0, 4).toString('latin1')).toBe('QEVM');
  }, 60_000);
  it('relays a multifd migration (2 channels): each channel named and saved, the set valid as migstream reads it', async () => {
    const [listen, to] = await freePortPair();
    const save = join(dir, 'multifd');
    const dst = await qemu('dst-multifd', ['-incoming', 'defer']);
    const caps = { capabilities: [{ capability: 'multifd', state: true }] };
    await dst.cmd('migrate-set-capabilities', caps);
    await dst.cmd('migrate-set-parameters', { 'multifd-channels': 2 });
    await dst.cmd('migrate-incoming', { uri: `tcp:127.0.0.1:${to}` });
    const t = await startTap(listen, to, save);
    const src = await qemu('src-multifd', []);
    await src.cmd('migrate-set-capabilities', caps);
    await src.cmd('migrate-set-parameters', { 'multifd-channels': 2 });
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('completed');
    const { code, err, events } = await t.done;
    expect(err).toBe('');
    expect(code).toBe(0);
    const channels = events.filter((e) => e['event'] === 'connection').map((e) => e['channel']);
    expect([...channels].sort()).toEqual(['main', 'multifd0', 'multifd1']);
    const summary = events.at(-1) as { status: string; channels: Record<string, number> };
    expect(summary.status).toBe('completed');
    for (const [name, file] of [
      ['main', 'main.mig'],
      ['multifd0', 'main.multifd0.bin'],
      ['multifd1', 'main.multifd1.bin'],
    ] as const)
      expect(summary.channels[name]).toBe(statSync(join(save, file)).size);
    // named by the channel id of their MultiFDInit packet (byte 24, after magic, version and UUID)
    expect(readFileSync(join(save, 'main.multifd0.bin'))[24]).toBe(0);
    expect(readFileSync(join(save, 'main.multifd1.bin'))[24]).toBe(1);
    // each channel decoded as it passed: its SYNC packets reported where the saved channel has them
    for (const channel of ['multifd0', 'multifd1']) {
      const saved = readFileSync(join(save, `main.${channel}.bin`));
      const syncs = [...decodeMultifdChannel(new StreamReader(new BufferSource(saved)), 4096)].flatMap((r) =>
        r.kind === 'multifd_packet' && r.header.flags & MultifdFlag.MULTIFD_FLAG_SYNC ? [r.offset] : [],
      );
      expect(syncs.length, channel).toBeGreaterThan(0);
      expect(
        events.filter((e) => e['event'] === 'multifd-sync' && e['channel'] === channel).map((e) => e['offset']),
      ).toEqual(syncs);
    }
    expect(events.filter((e) => e['event'] === 'diagnostic')).toEqual([]);
    expectValid(
      join(save, 'main.mig'),
      '--multifd',
      join(save, 'main.multifd0.bin'),
      '--multifd',
      join(save, 'main.multifd1.bin'),
    );
    await expectLoaded(src, dst);
  }, 60_000);
  it('--stop-on-error holds each record until it is judged: a stream the destination accepts still completes', async () => {
    const [listen, to] = await freePortPair();
    const save = join(dir, 'gated');
    const dst = await qemu('dst-gated', ['-incoming', `tcp:127.0.0.1:${to}`]);
    // `-machine pc` is pc-i440fx-7.2 in QEMU 7.2: the machine type the stream carries
    const t = await startTap(listen, to, save, ['--machine', 'pc-i440fx-7.2', '--stop-on-error']);
    const src = await qemu('src-gated', []);
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('completed');
    const { code, err, events } = await t.done;
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(events.some((e) => e['event'] === 'stopped')).toBe(false);
    const summary = events.at(-1) as { status: string; channels: Record<string, number> };
    expect(summary.status).toBe('completed');
    expect(summary.channels['main']).toBe(statSync(join(save, 'main.mig')).size);
    await expectLoaded(src, dst);
  }, 60_000);
  it('--stop-on-error with a q35 profile: a pc guest is refused before its configuration reaches the destination, and both sides fail', async () => {
    const [listen, to] = await freePortPair();
    const save = join(dir, 'refused');
    const dst = await qemu('dst-refused', ['-incoming', `tcp:127.0.0.1:${to}`]);
    const dstExit = new Promise<number | null>((resolve) => dst.proc.on('exit', (c) => resolve(c)));
    const profile = join(ROOT, 'fixtures', 'recorded-7.2', 'q35-devices-running.mig');
    const t = await startTap(listen, to, save, ['--profile', profile, '--stop-on-error']);
    const src = await qemu('src-refused', []);
    // with a return path the source hears of the destination's end (without one, a small guest's
    // stream is all in the socket buffers before the tap closes them, and the source calls it completed)
    await src.cmd('migrate-set-capabilities', { capabilities: [{ capability: 'return-path', state: true }] });
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('failed');
    const { code, err, events } = await t.done;
    expect(err).toBe('');
    expect(code).toBe(1);
    const rules = events
      .filter((e) => e['event'] === 'diagnostic')
      .map((e) => (e['diagnostic'] as { rule: string }).rule);
    expect(rules[0]).toBe('savevm/machine-type-mismatch');
    const stopped = events.find((e) => e['event'] === 'stopped');
    // the CONFIGURATION record follows the 8-byte file header (magic, version): only the header went through
    expect(stopped).toEqual({
      event: 'stopped',
      channel: 'main',
      offset: 8,
      rule: 'savevm/machine-type-mismatch',
      forwarded: 8,
    });
    expect((events.at(-1) as { status: string }).status).toBe('failed');
    // the destination read a header and then the end of its input: its load failed, and QEMU 7.2 exits with 1
    expect(await dstExit).toBe(1);
    expect(dst.stderr()).toContain('load of migration failed');
    expect(dst.stderr()).not.toContain('Machine type received');
    await src.quit();
  }, 60_000);
  it('relays a postcopy migration with its return path: both directions saved, the pair valid as migstream reads it', async () => {
    const [listen, to] = await freePortPair();
    const save = join(dir, 'postcopy');
    const caps = { capabilities: [{ capability: 'postcopy-ram', state: true }] };
    const dst = await qemu('dst-postcopy', ['-incoming', 'defer']);
    await dst.cmd('migrate-set-capabilities', caps);
    await dst.cmd('migrate-incoming', { uri: `tcp:127.0.0.1:${to}` });
    // the tap judges for a destination with postcopy-ram on (it cannot see the destination's capabilities)
    const t = await startTap(listen, to, save, ['--capability', 'postcopy-ram']);
    const src = await qemu('src-postcopy', []);
    await src.cmd('migrate-set-capabilities', caps);
    // slow, and a downtime limit precopy cannot meet: precopy is still running when postcopy is asked for
    await src.cmd('migrate-set-parameters', { 'max-bandwidth': 1 << 20, 'downtime-limit': 1 });
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    await new Promise((r) => setTimeout(r, 300));
    expect(await src.cmd('migrate-start-postcopy')).toEqual({ return: {} });
    expect(await src.migration()).toBe('completed');
    const { code, err, events } = await t.done;
    expect(err).toBe('');
    expect(code).toBe(0);
    // the source stops for the device state (MIG_CMD_PACKAGED), then the destination runs (MIG_CMD_POSTCOPY_RUN)
    expect(events.filter((e) => e['event'] === 'phase').map((e) => e['phase'])).toEqual([
      'iterating',
      'stop-and-copy',
      'postcopy',
      'completed',
    ]);
    const summary = events.at(-1) as { status: string; channels: Record<string, number>; diagnostics: unknown[] };
    expect(summary.status).toBe('completed');
    expect(summary.diagnostics).toEqual([]);
    const main = join(save, 'main.mig');
    const back = join(save, 'main-return-path.bin');
    expect(summary.channels['main']).toBe(statSync(main).size);
    expect(summary.channels['return-path']).toBe(statSync(back).size);
    const commands = events.filter((e) => e['event'] === 'command').map((e) => [e['command'], e['packaged'] ?? false]);
    // the return path as the tap decoded it live: every message of the saved capture, in order, ending with SHUT 0
    const messages = events.filter((e) => e['event'] === 'return-path');
    const savedBack = spawnSync(process.execPath, [BIN, 'dump', '--kind', 'return-path', '--format', 'summary', back], {
      encoding: 'utf8',
    });
    const listed = (JSON.parse(savedBack.stdout) as { messages: { offset: number; name: string }[] }).messages;
    expect(messages.map((e) => [e['offset'], e['message']])).toEqual(listed.map((x) => [x.offset, x.name]));
    expect(messages.at(-1)).toMatchObject({ message: 'MIG_RP_MSG_SHUT', fields: { status: 0 } });
    expect(messages.some((e) => e['message'] === 'MIG_RP_MSG_PONG')).toBe(true);
    // the switch to postcopy is inside the package, with the device state
    expect(commands).toContainEqual(['MIG_CMD_PACKAGED', false]);
    expect(commands).toContainEqual(['MIG_CMD_POSTCOPY_LISTEN', true]);
    expect(commands).toContainEqual(['MIG_CMD_POSTCOPY_RUN', true]);
    expectValid(main, '--return-path', back, '--capability', 'postcopy-ram');
    await expectLoaded(src, dst);
  }, 60_000);
  it('--mutate breaks a record header on its way: the destination fails on it, and the saved stream is what it got', async () => {
    const [listen, to] = await freePortPair();
    const save = join(dir, 'mutated');
    const dst = await qemu('dst-mutated', ['-incoming', `tcp:127.0.0.1:${to}`]);
    const dstExit = new Promise<number | null>((resolve) => dst.proc.on('exit', (c) => resolve(c)));
    // seed 4: its first draw hits the first candidate, the source's MIG_CMD_OPEN_RETURN_PATH
    const t = await startTap(listen, to, save, ['--mutate', '4']);
    const src = await qemu('src-mutated', []);
    await src.cmd('migrate-set-capabilities', { capabilities: [{ capability: 'return-path', state: true }] });
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('failed');
    const { events } = await t.done;
    const mutations = events.filter((e) => e['event'] === 'mutation');
    expect(mutations).toHaveLength(1);
    const first = events.find((e) => e['event'] === 'command');
    expect(first?.['command']).toBe('MIG_CMD_OPEN_RETURN_PATH');
    // the command's be16 cmd, after its QEMU_VM_COMMAND byte, now starts with 0x7f
    const at = Number(first?.['offset']) + 1;
    expect(mutations[0]?.['offset']).toBe(at);
    const saved = readFileSync(join(save, 'main.mig'));
    expect(saved[at]).toBe(0x7f);
    expect(await dstExit).toBe(1);
    // MIG_CMD_OPEN_RETURN_PATH is 1: the destination read 0x7f01
    expect(dst.stderr()).toContain('MIG_CMD 0x7f01 unknown');
    // and migstream, reading what the destination got, finds the same first fault at the same record
    const v = spawnSync(process.execPath, [BIN, 'validate', '--format', 'json', join(save, 'main.mig')], {
      encoding: 'utf8',
    });
    const verdict = JSON.parse(v.stdout) as { valid: boolean; diagnostics: { rule: string; offset: number }[] };
    expect(verdict.valid).toBe(false);
    expect(verdict.diagnostics[0]).toMatchObject({ rule: 'savevm/unknown-command', offset: at - 1 });
    await src.quit();
  }, 60_000);
});
