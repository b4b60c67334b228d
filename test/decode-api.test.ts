import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mainStreams, REAL, ROOT } from './helpers.js';
import { writeRamStream } from '../src/generator/synthetic-ram.js';

/**
 * The library's `decode()` the way a program uses it: `import { decode } from 'migstream'` in
 * a Node process of its own (the compiled package, as installed), reading a path, bytes, and a
 * real pipe (a child's stdout) decoded in a worker as the bytes arrive.
 */
function node(script: string, timeout = 120_000) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'migstream-decode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A script fragment: `summary(records)` reduces a record iterator to what two reads must share. */
const SUMMARY = `
  import { createHash } from 'node:crypto';
  async function summary(records) {
    const out = { records: [], error: undefined };
    const pages = createHash('sha256');
    try {
      for await (const r of records) {
        // a pipe has the vmdescription only at its end: device payloads are raw there, fields from a file
        const kind = r.kind === 'vmstate' ? 'raw' : r.kind;
        out.records.push(kind + '@' + r.offset + '+' + r.length);
        if (kind !== 'raw' && r.data instanceof Uint8Array) pages.update(r.data);
      }
    } catch (e) {
      out.error = { name: e.name, code: e.code, offset: e.offset, path: e.path };
    }
    out.data = pages.digest('hex');
    return out;
  }`;

describe("decode() from 'migstream'", () => {
  it('reads every recording from a real pipe as it reads the file: the same records, bytes and errors', () => {
    const files = mainStreams().map((f) => f.path);
    const r = node(`
      import { decode } from 'migstream';
      import { spawn } from 'node:child_process';
      ${SUMMARY}
      const differ = [];
      let records = 0;
      const errors = [], needVmsd = [];
      for (const f of ${JSON.stringify(files)}) {
        const fromFile = await summary(decode(f));
        let fromPipe = await summary(decode(spawn('cat', [f]).stdout, { name: 'cat' }));
        if (fromPipe.error && fromFile.error === undefined) {
          // no footers and the vmdescription still to come: a pipe needs the description given
          needVmsd.push(f.split('/').slice(-2).join('/'));
          const vmsd = f.replace(/[.]mig$/, '.desc.json');
          fromPipe = await summary(decode(spawn('cat', [f]).stdout, { name: 'cat', vmsd }));
        }
        records += fromFile.records.length;
        if (fromFile.error) errors.push(f.split('/').slice(-2).join('/') + ' ' + fromFile.error.code + ' at ' + fromFile.error.offset);
        if (JSON.stringify(fromFile) !== JSON.stringify(fromPipe)) differ.push(f);
      }
      console.log(JSON.stringify({ differ, records, errors, needVmsd }));
    `);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { differ: string[]; records: number; errors: string[]; needVmsd: string[] };
    expect(out.differ).toEqual([]);
    expect(out.records).toBeGreaterThan(100_000);
    // fixtures/real/index.json: the recording harness's scan of this one file says "truncated: file ends before
    // QEMU_VM_EOF" at 284041 (QEMU 10.0's source exited mid-stream); every other recording decodes to its end
    expect(out.errors).toEqual(['qemu-10.0/pc-no-configuration.mig truncated at 284041']);
    // the two recordings without section footers (their meta.json: -global migration.send-section-footer=off, with
    // 7.2 and 11.1): a device section's end is known only from its description, which a pipe carries at its end
    expect(out.needVmsd).toEqual(['qemu-7.2/pc-old-format.mig', 'qemu-11.1/pc-no-section-footer.mig']);
  });

  it('decodes device sections from a pipe with the vmdescription given as vmsd', () => {
    const paused = join(REAL, 'qemu-7.2', 'pc-paused');
    const r = node(`
      import { decode } from 'migstream';
      import { spawn } from 'node:child_process';
      const kinds = {};
      const child = spawn('cat', [${JSON.stringify(paused + '.mig')}]);
      for await (const r of decode(child.stdout, { vmsd: ${JSON.stringify(paused + '.desc.json')} })) kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
      console.log(JSON.stringify(kinds));
    `);
    expect(r.stderr).toBe('');
    const kinds = JSON.parse(r.stdout) as Record<string, number>;
    // fixtures/real/index.json census of 7.2 pc-paused: 30 device sections (FULL), all described
    expect(kinds.vmstate).toBe(30);
    expect(kinds.raw).toBeUndefined();
  });

  it('holds memory bounded for a consumer slower than the pipe, and stops the input when the consumer leaves', () => {
    const big = join(dir, 'big.mig');
    writeRamStream(big, 256 << 20);
    const r = node(`
      import { decode } from 'migstream';
      import { spawn } from 'node:child_process';
      const child = spawn('cat', [${JSON.stringify(big)}]);
      let pages = 0, maxRss = 0;
      for await (const r of decode(child.stdout)) {
        if (r.kind === 'ram' && r.op === 'page') {
          // 2 MiB of pages, then a pause: far slower than the decoder, which would otherwise run ahead
          if (++pages % 512 === 0) {
            maxRss = Math.max(maxRss, process.memoryUsage().rss);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          if (pages === 40000) break;
        }
      }
      const catExit = await new Promise((resolve) => child.exitCode !== null || child.signalCode !== null
        ? resolve(child.exitCode ?? child.signalCode) : child.on('close', (code, signal) => resolve(code ?? signal)));
      console.log(JSON.stringify({ pages, maxRss, catExit }));
    `);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { pages: number; maxRss: number; catExit: number | string };
    expect(out.pages).toBe(40000);
    // 160 MiB of pages went through; the stream is 256 MiB: a decoder that ran ahead would hold it
    expect(out.maxRss).toBeLessThan(150 << 20);
    // cat, still writing when the consumer left, found its pipe closed
    expect(out.catExit).not.toBe(0);
  });

  it('reports a truncated stream from a pipe as a StreamError at the offset the file gives', () => {
    const whole = readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.mig'));
    const cut = join(dir, 'cut.mig');
    writeFileSync(cut, whole.subarray(0, 100_000));
    const r = node(`
      import { decode, StreamError } from 'migstream';
      import { spawn } from 'node:child_process';
      ${SUMMARY}
      const fromFile = await summary(decode(${JSON.stringify(cut)}));
      const fromPipe = await summary(decode(spawn('cat', [${JSON.stringify(cut)}]).stdout));
      let typed;
      try { for await (const r of decode(spawn('cat', [${JSON.stringify(cut)}]).stdout)); } catch (e) { typed = e instanceof StreamError; }
      console.log(JSON.stringify({ fromFile: fromFile.error, fromPipe: fromPipe.error, typed }));
    `);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as {
      fromFile: { code: string; offset: number };
      fromPipe: unknown;
      typed: boolean;
    };
    expect(out.fromFile.code).toBe('truncated');
    expect(out.fromFile.offset).toBeLessThanOrEqual(100_000);
    expect(out.fromPipe).toEqual(out.fromFile);
    expect(out.typed).toBe(true);
  });

  it('reports an input that fails as a UsageError naming it, and bytes in memory as a file', () => {
    const paused = join(REAL, 'qemu-7.2', 'pc-paused.mig');
    const r = node(`
      import { decode, UsageError } from 'migstream';
      import { readFileSync } from 'node:fs';
      const bytes = readFileSync(${JSON.stringify(paused)});
      async function* failing() { yield bytes.subarray(0, 5000); throw new Error('connection reset'); }
      let failure;
      try { for await (const r of decode(failing(), { name: 'socket' })); } catch (e) { failure = { usage: e instanceof UsageError, message: e.message }; }
      let n = 0;
      for await (const r of decode(bytes)) n++;
      let m = 0;
      for await (const r of decode(${JSON.stringify(paused)})) m++;
      console.log(JSON.stringify({ failure, n, m }));
    `);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { failure: { usage: boolean; message: string }; n: number; m: number };
    expect(out.failure).toEqual({ usage: true, message: 'cannot read socket: connection reset' });
    // fixtures/real/index.json census of 7.2 pc-paused: file header, configuration, 33 section headers and
    // 33 footers, 8326 RAM records (MEM_SIZE, 8271 ZERO, 51 PAGE, 3 EOS), 6 RAMBlocks, 30 device payloads, EOF, vmdescription
    expect(out.n).toBe(8432);
    expect(out.m).toBe(8432);
  });
});
