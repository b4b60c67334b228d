/**
 * The side files of a machine model (block images, superseded page contents, encoded pages):
 * read at positions, never loaded whole, so a model of a 1 GiB stream costs a page at a time.
 */
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

export interface ModelFiles {
  /** `length` bytes of `file` from `position`; past the end reads as zero (a sparse image's tail) */
  read(file: string, position: number, length: number): Uint8Array;
  close(): void;
}

/** `length` bytes from `position` of a file of `size` bytes; what lies past its end reads as zero. */
function readPadded(fd: number, size: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length && position + done < size) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return out;
}

/** Side files named relative to the model's own directory. */
export class DirectoryFiles implements ModelFiles {
  private fds = new Map<string, { fd: number; size: number }>();
  constructor(private readonly dir: string) {}

  read(file: string, position: number, length: number): Uint8Array {
    const path = isAbsolute(file) ? file : join(this.dir, file);
    let f = this.fds.get(path);
    if (!f) {
      const fd = openSync(path, 'r');
      f = { fd, size: fstatSync(fd).size };
      this.fds.set(path, f);
    }
    return readPadded(f.fd, f.size, position, length);
  }

  close(): void {
    for (const f of this.fds.values()) closeSync(f.fd);
    this.fds.clear();
  }
}

/** Side files held in memory (tests, property checks). */
export class MemoryFiles implements ModelFiles {
  constructor(readonly files = new Map<string, Uint8Array>()) {}
  read(file: string, position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    const b = this.files.get(file);
    if (b && position < b.length) out.set(b.subarray(position, Math.min(b.length, position + length)));
    return out;
  }
  close(): void {}
}

/** Side files written into a directory as extraction goes (images are written sparse: zero pages are holes). */
export class DirectoryFilesWriter extends DirectoryFiles {
  private out = new Map<string, { fd: number; size: number }>();
  constructor(private readonly base: string) {
    super(base);
  }

  private open(file: string): { fd: number; size: number } {
    let f = this.out.get(file);
    if (!f) {
      const path = join(this.base, file);
      mkdirSync(dirname(path), { recursive: true });
      f = { fd: openSync(path, 'w+'), size: 0 };
      this.out.set(file, f);
    }
    return f;
  }

  write(file: string, position: number, data: Uint8Array): void {
    const f = this.open(file);
    writeAllAt(f.fd, data, position);
    f.size = Math.max(f.size, position + data.length);
  }

  append(file: string, data: Uint8Array): number {
    const f = this.open(file);
    const at = f.size;
    this.write(file, at, data);
    return at;
  }

  override read(file: string, position: number, length: number): Uint8Array {
    const f = this.out.get(file);
    // a side file being written that has no byte yet reads as zero (a sparse image)
    if (!f) return new Uint8Array(length);
    return readPadded(f.fd, f.size, position, length);
  }

  /** Images end at their last written page; give them the block's full length so they read like memory. */
  setLength(file: string, length: number): void {
    const f = this.open(file);
    if (f.size < length) {
      ftruncateSync(f.fd, length);
      f.size = length;
    }
  }

  override close(): void {
    for (const f of this.out.values()) closeSync(f.fd);
    this.out.clear();
    super.close();
  }
}

function writeAllAt(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Side files in memory that extraction can write (tests, property checks). */
export class MemoryFilesWriter extends MemoryFiles {
  write(file: string, position: number, data: Uint8Array): void {
    const cur = this.files.get(file) ?? new Uint8Array(0);
    const end = position + data.length;
    let b = cur;
    if (end > cur.length) {
      b = new Uint8Array(Math.max(end, cur.length * 2));
      b.set(cur);
      this.sizes.set(file, end);
    }
    b.set(data, position);
    this.files.set(file, b);
    if (end > (this.sizes.get(file) ?? 0)) this.sizes.set(file, end);
  }
  append(file: string, data: Uint8Array): number {
    const at = this.sizes.get(file) ?? 0;
    this.write(file, at, data);
    return at;
  }
  private sizes = new Map<string, number>();
}
