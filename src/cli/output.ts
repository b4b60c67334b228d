import { closeSync, openSync } from 'node:fs';
import { writeAllSync } from '../io/write-all.js';

/** Text output to a file or stdout, written as it is produced. */
export class TextOut {
  private fd: number;
  private pending: string[] = [];
  private size = 0;
  constructor(path: string | undefined) {
    this.fd = path === undefined || path === '-' ? 1 : openSync(path, 'w');
  }
  write = (s: string): void => {
    this.pending.push(s);
    this.size += s.length;
    if (this.size > 1 << 20) this.flush();
  };
  flush(): void {
    if (!this.pending.length) return;
    const buf = Buffer.from(this.pending.join(''), 'utf8');
    writeAllSync(this.fd, buf);
    this.pending = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    if (this.fd > 2) closeSync(this.fd);
  }
}

/** Text to stdout, all of it, whatever stdout is (a slow pipe, a terminal); EPIPE ends the command quietly. */
export function printStdout(s: string): void {
  writeAllSync(1, Buffer.from(s, 'utf8'));
}
