/**
 * A QEMU process with its QMP monitor on a unix socket, for the benchmarks and the tests that
 * drive real migrations: `cmd` sends one command and resolves with its reply (events are
 * skipped), `migration` polls query-migrate until it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';

export type QmpReply = Record<string, unknown>;

/** What query-migrate says of a migration that ended (times in ms, as QEMU reports them). */
export interface MigrationEnd {
  status: string;
  totalTime?: number;
  downtime?: number;
}

export interface Qemu {
  proc: ChildProcess;
  cmd: (execute: string, args?: object) => Promise<QmpReply>;
  /** poll query-migrate every 20 ms until completed or failed (or 30 s) */
  migration: () => Promise<MigrationEnd>;
  quit: () => Promise<void>;
  stderr: () => string;
}

/** Start `qemu-system-x86_64 ARGS` with a QMP socket in `dir`, connected and past qmp_capabilities. */
export async function startQemu(dir: string, name: string, args: string[]): Promise<Qemu> {
  const sock = join(dir, `${name}.qmp`);
  const proc = spawn('qemu-system-x86_64', [...args, '-qmp', `unix:${sock},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // the socket file appears at bind(), a moment before QEMU listens on it: retry a refused connection
  let conn: Socket | undefined;
  for (let i = 0; i < 400 && !conn; i++) {
    conn = await new Promise<Socket | undefined>((resolve) => {
      if (!existsSync(sock)) return void setTimeout(() => resolve(undefined), 25);
      const c = connect(sock, () => resolve(c));
      c.once('error', () => setTimeout(() => resolve(undefined), 25));
    });
  }
  if (!conn) {
    proc.kill('SIGKILL');
    throw new Error(`${name}: no QMP socket (${stderr})`);
  }
  const qmp = conn;
  let buf = '';
  const waiting: ((v: QmpReply) => void)[] = [];
  qmp.on('data', (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl)) as QmpReply;
      buf = buf.slice(nl + 1);
      if (!msg['event']) waiting.shift()?.(msg);
    }
  });
  qmp.on('error', () => undefined);
  await new Promise<QmpReply>((resolve) => waiting.push(resolve)); // the greeting
  const cmd = (execute: string, a?: object) =>
    new Promise<QmpReply>((resolve) => {
      waiting.push(resolve);
      qmp.write(JSON.stringify({ execute, ...(a ? { arguments: a } : {}) }) + '\n');
    });
  await cmd('qmp_capabilities');
  const migration = async (): Promise<MigrationEnd> => {
    for (let i = 0; i < 1500; i++) {
      const r = (await cmd('query-migrate'))['return'] as { status?: string; 'total-time'?: number; downtime?: number };
      if (r.status === 'completed' || r.status === 'failed')
        return { status: r.status, totalTime: r['total-time'], downtime: r.downtime };
      await new Promise((res) => setTimeout(res, 20));
    }
    return { status: 'timeout' };
  };
  const quit = async () => {
    await Promise.race([cmd('quit'), new Promise((res) => setTimeout(res, 2000))]);
    qmp.destroy();
    proc.kill('SIGKILL');
  };
  return { proc, cmd, migration, quit, stderr: () => stderr };
}

/** Distinct free loopback ports: all are held open until all are known. */
export async function freePorts(n: number): Promise<number[]> {
  const open = () =>
    new Promise<ReturnType<typeof createServer>>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
  const servers = [];
  for (let i = 0; i < n; i++) servers.push(await open());
  const ports = servers.map((s) => {
    const a = s.address();
    return typeof a === 'object' && a ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
