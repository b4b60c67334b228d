import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/**
 * `migstream tap` between two real QEMU 7.2 processes on loopback: the source migrates to the
 * tap, the tap relays to the destination's -incoming, and decodes as the bytes pass.
 */
const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const BIN = join(ROOT, 'bin', 'migstream');
const QEMU = ['-machine', 'pc', '-m', '32M', '-nodefaults', '-display', 'none', '-accel', 'tcg'];
const dir = mkdtempSync(join(tmpdir(), 'migstream-tap-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  if (!process.env['KEEP_TAP']) rmSync(dir, { recursive: true, force: true });
});

/** Two distinct free loopback ports: both are held open until both are known. */
async function freePorts(): Promise<[number, number]> {
  const open = () =>
    new Promise<ReturnType<typeof createServer>>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
  const servers = [await open(), await open()];
  const ports = servers.map((s) => {
    const a = s.address();
    return typeof a === 'object' && a ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return [ports[0] ?? 0, ports[1] ?? 0];
}

/** A QEMU with its QMP monitor on a unix socket; `cmd` sends one command and returns its reply. */
async function qemu(name: string, args: string[]) {
  const sock = join(dir, `${name}.qmp`);
  const proc = spawn('qemu-system-x86_64', [...QEMU, ...args, '-qmp', `unix:${sock},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(proc);
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // the socket file appears at bind(), a moment before QEMU listens on it: retry a refused connection
  let conn: Socket | undefined;
  for (let i = 0; i < 400 && !conn; i++) {
    conn = await new Promise<Socket | undefined>((resolve) => {
      if (!existsSync(sock)) return void setTimeout(() => resolve(undefined), 25);
      const c = connect(sock, () => resolve(c));
      c.once('error', () => setTimeout(() => resolve(undefined), 25));
    });
  }
  if (!conn) throw new Error(`${name}: no QMP socket (${stderr})`);
  let buf = '';
  const waiting: ((v: Record<string, unknown>) => void)[] = [];
  conn.on('data', (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if (!msg['event']) waiting.shift()?.(msg);
    }
  });
  conn.on('error', () => undefined);
  await new Promise<Record<string, unknown>>((resolve) => waiting.push(resolve)); // the greeting
  const cmd = (execute: string, args?: object) =>
    new Promise<Record<string, unknown>>((resolve) => {
      waiting.push(resolve);
      conn.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  await cmd('qmp_capabilities');
  const migration = async () => {
    for (let i = 0; i < 600; i++) {
      const r = (await cmd('query-migrate'))['return'] as { status?: string };
      if (r.status === 'completed' || r.status === 'failed') return r.status;
      await new Promise((res) => setTimeout(res, 50));
    }
    return 'timeout';
  };
  const quit = async () => {
    await cmd('quit').catch(() => undefined);
    conn.destroy();
  };
  return { proc, cmd, migration, quit, stderr: () => stderr };
}

/** `migstream tap --once --save DIR --format json`, started and listening; `done` gives its exit status and events. */
async function startTap(listen: number, to: number, save: string, extra: string[] = []) {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'tap',
      '--listen',
      `127.0.0.1:${listen}`,
      '--to',
      `127.0.0.1:${to}`,
      '--once',
      '--save',
      save,
      '--format',
      'json',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(proc);
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve) =>
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"listening"')) resolve();
    }),
  );
  const done = new Promise<{ code: number | null; err: string; events: Record<string, unknown>[] }>((resolve) =>
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
  return { done };
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

describe.skipIf(!hasQemu)('migstream tap with QEMU 7.2 on loopback', () => {
  it('relays a precopy migration of a running guest, decodes it as it passes and saves what it relayed', async () => {
    const [listen, to] = await freePorts();
    const save = join(dir, 'precopy');
    const dst = await qemu('dst', ['-incoming', `tcp:127.0.0.1:${to}`]);
    const t = await startTap(listen, to, save);
    const src = await qemu('src', []);
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('completed');
    const { code, err, events } = await t.done;
    expect(code).toBe(0);
    expect(err).toBe('');
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
    const [listen, to] = await freePorts();
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
    const [listen, to] = await freePorts();
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
    const [listen, to] = await freePorts();
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
    const [listen, to] = await freePorts();
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
    const summary = events.at(-1) as { status: string; channels: Record<string, number>; diagnostics: unknown[] };
    expect(summary.status).toBe('completed');
    expect(summary.diagnostics).toEqual([]);
    const main = join(save, 'main.mig');
    const back = join(save, 'main-return-path.bin');
    expect(summary.channels['main']).toBe(statSync(main).size);
    expect(summary.channels['return-path']).toBe(statSync(back).size);
    const commands = events.filter((e) => e['event'] === 'command').map((e) => [e['command'], e['packaged'] ?? false]);
    // the switch to postcopy is inside the package, with the device state
    expect(commands).toContainEqual(['MIG_CMD_PACKAGED', false]);
    expect(commands).toContainEqual(['MIG_CMD_POSTCOPY_LISTEN', true]);
    expect(commands).toContainEqual(['MIG_CMD_POSTCOPY_RUN', true]);
    expectValid(main, '--return-path', back, '--capability', 'postcopy-ram');
    await expectLoaded(src, dst);
  }, 60_000);
});
