// A Linux pipe holds 64 KiB unless one of its ends asks for more (fcntl F_SETPIPE_SZ). With
// 64 KiB, the process writing a stream into migstream and migstream itself take turns about
// 16,000 times a GiB; with 1 MiB, `cat FILE | migstream dump -` took half the time on the
// 2-core development machine (0.44-0.50 s against 1.03-1.06 s for 1 GiB; 256 KiB did nearly
// as well as 1 MiB, 4 MiB as badly as 64 KiB). A large output into a pipe gains the same way:
// 400 MB of `dump --ram hex` into `| cat`, 0.82-0.89 s against 1.24-1.29.
//
// Node has no fcntl. The capacity belongs to the pipe, not to the descriptor, so any process
// holding an end may set it: a short perl (part of every Debian and most other Linux systems;
// 4 ms here) given the pipe as its stdin sets it for us. Without perl, or where the kernel
// refuses (an unprivileged user past /proc/sys/fs/pipe-max-size or the per-user pipe budget),
// the pipe keeps its size and everything works as before, only slower.
import type * as ChildProcess from 'node:child_process';
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * node:child_process when a pipe is first enlarged: loading it (and the network modules it
 * brings) at start-up cost every command 1-2 ms, and most runs read no pipe.
 */
let loaded: typeof ChildProcess | undefined;
const childProcess = (): typeof ChildProcess =>
  (loaded ??= createRequire(import.meta.url)('node:child_process') as typeof ChildProcess);

/** What migstream asks for: the default /proc/sys/fs/pipe-max-size, so any user may ask it. */
export const PIPE_CAPACITY = 1 << 20;

/** <linux/fcntl.h>: F_LINUX_SPECIFIC_BASE (1024) + 7 and + 8 */
export const F_SETPIPE_SZ = 1031;
export const F_GETPIPE_SZ = 1032;

/**
 * Prints the pipe's capacity after asking for the first of its arguments the kernel grants,
 * unless it already holds the first; exits 1 when the descriptor is no pipe.
 */
const SET_FIRST_GRANTED = [
  `my $now = fcntl(STDIN, ${F_GETPIPE_SZ}, 0); defined $now or exit 1;`,
  `if ($now < $ARGV[0]) { for my $s (@ARGV) { next if $s <= $now; my $r = fcntl(STDIN, ${F_SETPIPE_SZ}, $s + 0); if (defined $r) { $now = $r; last } } }`,
  'print $now + 0',
].join(' ');
const GET = `my $r = fcntl(STDIN, ${F_GETPIPE_SZ}, 0); defined $r or exit 1; print $r + 0`;

function perlOnPipe(fd: number, script: string, args: readonly string[]): number | undefined {
  if (process.platform !== 'linux') return undefined;
  const r = childProcess().spawnSync('perl', ['-e', script, ...args], {
    stdio: [fd, 'pipe', 'ignore'],
    encoding: 'latin1',
    timeout: 5000,
  });
  if (r.status !== 0) return undefined;
  const n = Number(r.stdout);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * Asks the kernel to let the pipe `fd` hold `bytes` (256 KiB where that is refused); returns
 * the capacity it then has, or undefined when it could not be asked (no perl, not a pipe).
 * A pipe that already holds as much is left as it is.
 */
export function enlargePipe(fd: number, bytes = PIPE_CAPACITY): number | undefined {
  return perlOnPipe(fd, SET_FIRST_GRANTED, [bytes, Math.min(bytes, 1 << 18)].map(String));
}

/** The pipe's capacity in bytes (F_GETPIPE_SZ), or undefined when it could not be asked. */
export function pipeCapacity(fd: number): number | undefined {
  return perlOnPipe(fd, GET, []);
}

/** The pipes (device and inode) an output has already asked to enlarge, granted or not. */
const askedFor = new Set<string>();

/**
 * For writers: enlarges `fd` once if it is a pipe, the first time a large write goes to it
 * (a command whose output is small never pays for the helper process).
 */
export function enlargeOutputPipe(fd: number): void {
  let key: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFIFO()) return;
    key = `${st.dev}:${st.ino}`;
  } catch {
    return;
  }
  if (askedFor.has(key)) return;
  askedFor.add(key);
  enlargePipe(fd);
}
