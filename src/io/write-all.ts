import { writeSync } from 'node:fs';
import { enlargeOutputPipe, PIPE_CAPACITY } from './pipe-size.js';

/**
 * The reader of our output went away (EPIPE: `migstream dump ... | head`). Not an error of the
 * command: the CLI ends quietly with the status a shell gives a process killed by SIGPIPE.
 */
export class OutputClosedError extends Error {
  constructor() {
    super('the reader of the output closed it');
    this.name = 'OutputClosedError';
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Write all of `buf` to a file descriptor with blocking semantics, whatever it is: a
 * non-blocking pipe or socket answers EAGAIN when its reader is slow, and a write may be
 * partial. Back-pressure waits here (1 ms, growing to 50 ms) instead of losing bytes.
 */
export function writeAllSync(fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset): void {
  // a large output into a 64 KiB pipe: the reader and we would take turns 16 times a MiB
  if (length >= PIPE_CAPACITY / 4) enlargeOutputPipe(fd);
  let off = offset;
  const end = offset + length;
  let wait = 1;
  while (off < end) {
    try {
      off += writeSync(fd, buf, off, end - off);
      wait = 1;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        Atomics.wait(pause, 0, 0, wait);
        wait = Math.min(wait * 2, 50);
        continue;
      }
      if (code === 'EPIPE') throw new OutputClosedError();
      throw e;
    }
  }
}
