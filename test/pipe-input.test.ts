import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openMainStream } from '../src/codec/open.js';
import { writeRamStream } from '../src/generator/synthetic-ram.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import { F_GETPIPE_SZ, PIPE_CAPACITY, enlargePipe, pipeCapacity } from '../src/io/pipe-size.js';
import { ROOT, runCli, tempDir } from './helpers.js';

/**
 * A stream given on stdin, through a real pipe, gives what the same file gives by path: a
 * 24 MiB stream, many times the pipe's 64 KiB and the reader's buffer refills, from a writer
 * that sends it at once and from one that sends it slowly, in uneven pieces.
 */
const BIN = join(ROOT, 'bin', 'migstream');
const tmp = tempDir('migstream-pipe-');
const big = join(tmp, 'ram-24m.mig');
writeRamStream(big, 24 << 20);
const bytes = readFileSync(big);

const run = runCli;

describe('a stream on stdin (a pipe) and the same file by path', () => {
  for (const args of [['dump'], ['dump', '--format', 'summary'], ['validate', '--format', 'json'], ['stats']]) {
    it(`${args.join(' ')}: the same output`, () => {
      const byPath = run([...args, big]);
      expect(byPath.code).toBe(0);
      const piped = run([...args, '-'], bytes);
      expect(piped.stderr).toBe('');
      expect(piped.code).toBe(0);
      // the input's name is the one difference a report may show
      expect(piped.stdout).toBe(byPath.stdout.split(big).join('-'));
    });
  }

  it('an error past the first 8 MiB: the same diagnostic at the same offset', () => {
    const bad = Buffer.from(bytes);
    // the first RAM record header 20 MiB in, its flags made a combination QEMU does not know
    let at = -1;
    for (const r of openMainStream(new BufferSource(bytes)).records())
      if (r.kind === 'ram' && r.offset > 20 << 20) {
        at = r.offset;
        break;
      }
    expect(at).toBeGreaterThan(20 << 20);
    bad[at + 6] = 0x0f;
    bad[at + 7] = 0xff;
    const path = join(tmp, 'bad.mig');
    writeFileSync(path, bad);
    const byPath = run(['validate', path]);
    const piped = run(['validate', '-'], bad);
    expect(byPath.code).toBe(1);
    expect(piped.code).toBe(1);
    // by path the bytes around the error are shown too (a pipe's are gone): the rest is the same
    const diagnostics = (out: string): string[] => out.split('\n').filter((l) => !l.startsWith(' '));
    expect(diagnostics(piped.stdout)).toEqual(diagnostics(byPath.stdout.split(path).join('-')));
    expect(piped.stdout).toContain(`at 0x${at.toString(16)}: `);
    expect(piped.stdout).toContain('[stream/bad-ram-record]');
  });

  it('a writer that sends the stream slowly, in pieces: the same output, nothing lost or reordered', async () => {
    const byPath = run(['dump', '--format', 'summary', big]);
    const child = spawn(process.execPath, [BIN, 'dump', '--format', 'summary', '-'], {
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // uneven pieces (a prime size), a pause after every few: the reading thread waits, then catches up
    const piece = 1_000_003;
    for (let at = 0, n = 0; at < bytes.length; at += piece, n++) {
      if (!child.stdin.write(bytes.subarray(at, at + piece)))
        await new Promise((resolve) => child.stdin.once('drain', resolve));
      if (n % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(err).toBe('');
    expect(out).toBe(byPath.stdout.split(big).join('-'));
  }, 60_000);
});

/**
 * A pipe's capacity is the pipe's own: migstream asks for 1 MiB (F_SETPIPE_SZ, through perl)
 * and the writer feeding it sees the same pipe. Linux's default is 64 KiB (pipe(7)).
 */
/** Shell: prints the capacity of the pipe on stdin (perl's fcntl, as src/io/pipe-size.ts asks it). */
const PRINT_STDIN_PIPE_SIZE = `perl -e 'print fcntl(STDIN, ${F_GETPIPE_SZ}, 0) + 0'`;

describe('the pipe migstream reads is enlarged', () => {
  const fifo = join(tmp, 'fifo');
  spawnSync('mkfifo', [fifo]);

  it('enlargePipe: 64 KiB -> 1 MiB, never smaller again, nothing for a regular file', () => {
    // O_RDWR: a FIFO opened for both ends neither blocks nor needs a second process
    const fd = openSync(fifo, 'r+');
    try {
      expect(pipeCapacity(fd)).toBe(64 << 10);
      expect(enlargePipe(fd)).toBe(PIPE_CAPACITY);
      expect(pipeCapacity(fd)).toBe(1 << 20);
      // asking for less than it holds leaves it as it is
      expect(enlargePipe(fd, 64 << 10)).toBe(1 << 20);
      expect(pipeCapacity(fd)).toBe(1 << 20);
    } finally {
      closeSync(fd);
    }
    const file = openSync(big, 'r');
    try {
      expect(enlargePipe(file)).toBeUndefined();
    } finally {
      closeSync(file);
    }
  });

  it('a FIFO given by path: FileSource enlarges it when it opens it', () => {
    const writer = openSync(fifo, 'r+');
    try {
      expect(pipeCapacity(writer)).toBe(64 << 10);
      const src = new FileSource(fifo);
      expect(src.seekable).toBe(false);
      expect(pipeCapacity(writer)).toBe(1 << 20);
      src.close();
    } finally {
      closeSync(writer);
    }
  });

  it("`cat FILE | migstream dump -`: the writer's pipe holds 1 MiB once migstream has it, and the output is the path's", () => {
    // the same pipe read after migstream is done: perl on the pipeline's stdin asks its size
    const script = `cat "$1" | { "$2" "$3" dump - > "$4"; ${PRINT_STDIN_PIPE_SIZE}; }`;
    const out = join(tmp, 'piped.json');
    const r = spawnSync('sh', ['-c', script, 'sh', big, process.execPath, BIN, out], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(String(1 << 20));
    expect(readFileSync(out, 'utf8')).toBe(run(['dump', big]).stdout.split(big).join('-'));
  });
});

describe('the pipe migstream writes a large output into is enlarged, a small output leaves it be', () => {
  const ram = join(tmp, 'ram-2m.mig');
  writeRamStream(ram, 2 << 20);
  // the pipeline's reader takes everything, then asks the pipe's size
  const capacityAfter = (args: string[]): { size: string; out: string } => {
    const out = join(tmp, 'written.txt');
    const script = `node="$1" bin="$2" out="$3"; shift 3; "$node" "$bin" "$@" | { cat > "$out"; ${PRINT_STDIN_PIPE_SIZE}; }`;
    const r = spawnSync('sh', ['-c', script, 'sh', process.execPath, BIN, out, ...args], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return { size: r.stdout, out: readFileSync(out, 'utf8') };
  };

  it('dump --ram hex (megabytes of text): 1 MiB, and the text is what a file gets', () => {
    const piped = capacityAfter(['dump', '--ram', 'hex', ram]);
    expect(piped.size).toBe(String(1 << 20));
    expect(piped.out.length).toBeGreaterThan(1 << 20);
    expect(piped.out).toBe(run(['dump', '--ram', 'hex', ram]).stdout);
  });

  it('stats (a few hundred bytes): the pipe keeps its 64 KiB, no helper started', () => {
    const piped = capacityAfter(['stats', ram]);
    expect(piped.size).toBe(String(64 << 10));
    expect(piped.out).toBe(run(['stats', ram]).stdout);
  });
});
