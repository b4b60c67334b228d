import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, onTestFinished } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MainChannelDecoder } from '../src/codec/decode.js';
import { openMainStream } from '../src/codec/open.js';
import type { MainRecord } from '../src/model/records.js';
import { StreamError } from '../src/model/errors.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource, type ByteSource } from '../src/io/source.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REAL = join(ROOT, 'fixtures', 'real');
export const VERSIONS = ['qemu-7.2', 'qemu-10.0', 'qemu-11.1'] as const;

export interface Fixture {
  version: string;
  name: string;
  path: string;
  base: string;
}

/** Every main-channel recording shipped in fixtures/real. */
export function mainStreams(): Fixture[] {
  const out: Fixture[] = [];
  for (const v of VERSIONS) {
    for (const f of readdirSync(join(REAL, v)).sort()) {
      if (f.endsWith('.mig'))
        out.push({ version: v, name: f, path: join(REAL, v, f), base: join(REAL, v, f.slice(0, -4)) });
    }
  }
  return out;
}

/** The census the recording harness took of each file (fixtures/real/index.json). */
export interface IndexFile {
  file: string;
  size: number;
  kind: string;
  scan: {
    end_offset?: number;
    records?: Record<string, number>;
    commands?: Record<string, number>;
    ram?: Record<string, number>;
    capabilities?: string[];
    subsections?: number;
    vmdescription?: boolean;
    page_size?: number;
  };
}
export interface IndexCase {
  version: string;
  case: string;
  dir: string;
  files: IndexFile[];
}
export function fixtureIndex(): IndexCase[] {
  return JSON.parse(readFileSync(join(REAL, 'index.json'), 'utf8')) as IndexCase[];
}

export function decodeBytes(
  bytes: Uint8Array,
  opts: { capacity?: number } = {},
): { records: MainRecord[]; error?: StreamError } {
  const r = new StreamReader(new BufferSource(bytes), opts.capacity);
  const d = new MainChannelDecoder(r, { copyData: true });
  const records: MainRecord[] = [];
  try {
    for (const rec of d.records()) records.push(rec);
  } catch (e) {
    if (e instanceof StreamError) return { records, error: e };
    throw e;
  }
  return { records };
}

/** Decode a file the way the CLI does (vmdescription located first), keeping copies of every record. */
export function decodeFile(path: string): { records: MainRecord[]; error?: StreamError; warnings: number } {
  const s = openMainStream(new BufferSource(new Uint8Array(readFileSync(path)), path), { copyData: true });
  const records: MainRecord[] = [];
  try {
    for (const rec of s.records()) records.push(rec);
  } catch (e) {
    if (e instanceof StreamError) return { records, error: e, warnings: s.warnings.length };
    throw e;
  }
  return { records, warnings: s.warnings.length };
}

/** A non-seekable source that hands out at most 64 KiB a read, as a pipe does. */
export class PipeLike implements ByteSource {
  readonly seekable = false;
  readonly size = undefined;
  readonly name = 'pipe';
  private pos = 0;
  constructor(private readonly data: Uint8Array) {}
  read(into: Uint8Array, intoOffset: number, length: number, at: number): number {
    if (at !== this.pos) throw new Error(`a pipe read at ${at}, expected ${this.pos}`);
    const n = Math.min(length, 65536, this.data.length - at);
    if (n <= 0) return 0;
    into.set(this.data.subarray(at, at + n), intoOffset);
    this.pos += n;
    return n;
  }
  close(): void {}
}

/**
 * A fresh directory under the system temp dir, removed when the file's tests (or, inside a
 * test, that test) are done: the suite runs thousands of times under mutation testing.
 */
export function tempDir(prefix: string, scope: 'file' | 'test' = 'file'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  if (scope === 'test') onTestFinished(remove);
  else afterAll(remove);
  return dir;
}

/**
 * Which QEMU the tests that start one can use: none when `qemu-system-x86_64` is missing, or
 * when MIGSTREAM_TEST_NO_QEMU is set (the mutation runs: a QEMU test covers in-process code,
 * so every mutant it covers would start QEMU again, minutes a mutant on this machine).
 */
function installedQemu(): { any: boolean; is72: boolean } {
  if (process.env['MIGSTREAM_TEST_NO_QEMU']) return { any: false, is72: false };
  const v = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  return { any: v.status === 0, is72: v.status === 0 && /version 7\.2\./.test(v.stdout) };
}
const qemu = installedQemu();
/** A qemu-system-x86_64 is installed (and the run allows QEMU). */
export const hasQemu = qemu.any;
/** The installed QEMU is 7.2, the release the recordings' verdicts are checked against. */
export const hasQemu72 = qemu.is72;

/** bin/migstream run as a user runs it, `input` given on its stdin (a pipe); colours off. */
export function runCli(
  args: string[],
  input?: Uint8Array,
): { code: number | null; stdout: string; stderr: string; raw: Buffer } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'migstream'), ...args], {
    input,
    encoding: 'buffer',
    maxBuffer: 1 << 28,
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

/** bin/qemu-load's options for a destination of the compressed multifd recordings (two channels, multifd-compression). */
export function multifdDestination(compression: 'zstd' | 'zlib'): string[] {
  return [
    '--capability',
    'multifd',
    '--parameter',
    'multifd-channels=2',
    '--parameter',
    `multifd-compression=${compression}`,
  ];
}

/**
 * pc-paused (QEMU 7.2) with one of its zero-page records (RAM_SAVE_FLAG_CONTINUE, 9 bytes)
 * sent `copies` times more right after it: a valid stream of as many records as a test needs.
 * Returns the bytes and the repeated record's offset.
 */
export function pcPausedWithZeroPages(copies: number): { bytes: Uint8Array; zeroAt: number } {
  const path = join(REAL, 'qemu-7.2', 'pc-paused.mig');
  const base = new Uint8Array(readFileSync(path));
  const zero = decodeFile(path).records.find((r) => r.kind === 'ram' && r.op === 'zero' && r.length === 9)!;
  const end = zero.offset + 9;
  const bytes = new Uint8Array(base.length + copies * 9);
  bytes.set(base.subarray(0, end));
  for (let i = 0; i < copies; i++) bytes.set(base.subarray(zero.offset, end), end + i * 9);
  bytes.set(base.subarray(end), end + copies * 9);
  return { bytes, zeroAt: zero.offset };
}

/** A BufferSource that counts the bytes asked of it (what a comparison read a second time). */
export function countingSource(bytes: Uint8Array): { source: BufferSource; asked: () => number } {
  const source = new BufferSource(bytes);
  let n = 0;
  const read = source.read.bind(source);
  source.read = (into, intoOffset, length, at) => {
    n += length;
    return read(into, intoOffset, length, at);
  };
  return { source, asked: () => n };
}
