import { closeSync, openSync, writeSync } from 'node:fs';

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
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
    }
    this.pending = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    if (this.fd > 2) closeSync(this.fd);
  }
}
