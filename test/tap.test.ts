import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
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
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
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
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
  const conn = connect(sock);
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

describe.skipIf(!hasQemu)('migstream tap with QEMU 7.2 on loopback', () => {
  it('relays a precopy migration of a running guest, decodes it as it passes and saves what it relayed', async () => {
    const [listen, to] = [await freePort(), await freePort()];
    const save = join(dir, 'precopy');
    const dst = await qemu('dst', ['-incoming', `tcp:127.0.0.1:${to}`]);
    const tapProc = spawn(
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
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(tapProc);
    let out = '';
    let err = '';
    tapProc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve) =>
      tapProc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"listening"')) resolve();
      }),
    );
    const tapExit = new Promise<number | null>((resolve) => tapProc.on('close', (code) => resolve(code)));
    const src = await qemu('src', []);
    await src.cmd('migrate', { uri: `tcp:127.0.0.1:${listen}` });
    expect(await src.migration()).toBe('completed');
    expect(await tapExit).toBe(0);
    expect(err).toBe('');
    const events = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
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
    const v = spawnSync(process.execPath, [BIN, 'validate', main], { encoding: 'utf8' });
    expect(v.stdout).toContain('valid (0 diagnostics)');
    const rt = spawnSync(process.execPath, [BIN, 'roundtrip', main], { encoding: 'utf8' });
    expect(rt.stdout).toContain('identical');
    // and the destination loaded it
    expect(await dst.migration()).toBe('completed');
    await src.quit();
    await dst.quit();
    expect(readFileSync(main).subarray(0, 4).toString('latin1')).toBe('QEVM');
  }, 60_000);
});
