import { closeSync, openSync } from 'node:fs';
import { writeAllSync } from '../io/write-all.js';

/** Text output to a file or stdout, written as it is produced. */
export class TextOut {
  private fd: number;
  /**
   * Text is encoded into this buffer as it comes and written when it is full. Keeping the
   * strings until a megabyte of them was joined made a megabyte string per write, outside the
   * young generation: a --ram hex dump of 1 GiB grew the old generation to 65 MB between
   * collections; now each string is garbage as soon as it is copied here.
   */
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  constructor(path: string | undefined) {
    this.fd = path === undefined || path === '-' ? 1 : openSync(path, 'w');
  }
  write = (s: string): void => {
    // a UTF-16 unit is at most 3 bytes of UTF-8
    if (this.used + s.length * 3 > this.buf.length) {
      this.flush();
      if (s.length * 3 > this.buf.length) {
        writeAllSync(this.fd, Buffer.from(s, 'utf8'));
        return;
      }
    }
    this.used += this.buf.write(s, this.used, 'utf8');
  };
  /** ASCII text already encoded (a page's hex): copied in as it is, after the text before it. */
  writeBytes = (b: Uint8Array): void => {
    if (this.used + b.length > this.buf.length) {
      this.flush();
      if (b.length > this.buf.length) {
        writeAllSync(this.fd, b, 0, b.length);
        return;
      }
    }
    this.buf.set(b, this.used);
    this.used += b.length;
  };
  flush(): void {
    if (!this.used) return;
    writeAllSync(this.fd, this.buf, 0, this.used);
    this.used = 0;
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
