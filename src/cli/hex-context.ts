/**
 * The bytes around an error's offset, as `hexdump -C` shows them, with the byte at the offset
 * marked: what a person opens a hex editor for after reading "at 0x114c: expected …".
 * Only for inputs that can be read again at an offset (a file, not a pipe or a gzip capture).
 */
import type { ChalkInstance } from 'chalk';
import { openSource } from '../app/open.js';
import type { ByteSource } from '../io/source.js';
import { isQcow2File } from '../qcow2/image.js';

const ROW = 16;

/** Up to three rows (the one before, the offset's, the one after); '' when the input cannot be re-read. */
export function hexContext(file: string, offset: number, c: ChalkInstance, indent = '    '): string {
  // a qcow2 image's offsets are in a snapshot's VM state or in the image's tables (the error's path says
  // which): no one view of the file shows both
  if (isQcow2File(file)) return '';
  let src: ByteSource;
  try {
    src = openSource(file);
  } catch {
    return '';
  }
  try {
    if (!src.seekable || !Number.isSafeInteger(offset) || offset < 0) return '';
    const start = Math.max(0, Math.floor(offset / ROW) * ROW - ROW);
    const bytes = new Uint8Array(3 * ROW);
    let n = 0;
    for (let k; n < bytes.length && (k = src.read(bytes, n, bytes.length - n, start + n)) > 0;) n += k;
    // an error at the end of the input (a cut stream): the last bytes, then where it ends
    if (offset > start + n || n === 0) return '';
    const lines: string[] = [];
    for (let row = 0; row * ROW < n; row++) {
      const at = start + row * ROW;
      const cells: string[] = [];
      let text = '';
      let caret = -1;
      for (let i = 0; i < ROW; i++) {
        const b = row * ROW + i < n ? bytes[row * ROW + i] : undefined;
        const hex = b === undefined ? '  ' : b.toString(16).padStart(2, '0');
        const here = at + i === offset;
        const sep = i === 8 ? '  ' : ' ';
        if (here) caret = cells.join('').length + sep.length;
        cells.push(sep + (here ? c.inverse.red(hex) : hex));
        const ch = b === undefined ? ' ' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
        text += here ? c.inverse.red(ch) : ch;
      }
      lines.push(`${indent}${c.dim(at.toString(16).padStart(8, '0'))} ${cells.join('')}  |${text}|`);
      // without color the mark is a caret under the byte (columns counted without escape codes)
      if (caret >= 0 && c.level === 0) lines.push(`${indent}${' '.repeat(9 + caret)}^^ 0x${offset.toString(16)}`);
    }
    if (offset === start + n) lines.push(`${indent}${c.dim(`(the input ends at 0x${offset.toString(16)})`)}`);
    return lines.join('\n') + '\n';
  } finally {
    src.close();
  }
}
