/**
 * Bytes as analyze-migration.py prints them: two lowercase hex digits each, separated by spaces
 * (`" ".join("{0:02x}".format(c) for c in data)`), here as a JSON string literal. Guest pages
 * under `dump --ram hex` are most of what goes through it (a 4 KiB page is 12 KiB of text), so it
 * writes four input bytes as three 32-bit words (twelve characters) instead of twelve single
 * bytes (a 256 MiB `--ram hex` dump: 1.35 -> 0.75 s).
 */

/** The ASCII codes of the 16 lowercase hex digits (analyze.ts's integer lists write with them too). */
export const HEX_DIGIT_CODES = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const SPACE = 0x20;
const QUOTE = 0x22;

/** The two hex digits of a byte value as a 16-bit word of a little-endian machine's memory: first digit in the low byte. */
const PAIR = new Uint16Array(256);
for (let b = 0; b < 256; b++) PAIR[b] = HEX_DIGIT_CODES[b >> 4]! | (HEX_DIGIT_CODES[b & 15]! << 8);

/** Whether 32-bit words are stored low byte first here (the word layout below assumes it). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The output buffer, kept from call to call. Its hex starts at byte 4 (a word boundary), the
 * opening quote right before it at byte 3.
 */
export class HexScratch {
  private bytes = new Uint8Array(0);
  private words = new Uint32Array(0);
  private text = Buffer.alloc(0);

  /** `"0a ff 00"`, quotes included, for `b`. */
  quoted(b: Uint8Array): string {
    const text = this.quotedBytes(b);
    return this.text.toString('latin1', text.byteOffset, text.byteOffset + text.length);
  }

  /** quoted's text as its ASCII bytes: a view of the scratch buffer, valid until the next call. */
  quotedBytes(b: Uint8Array): Uint8Array {
    const n = b.length;
    const end = 4 + 3 * n;
    if (this.bytes.length < end + 4) {
      // whole words, with room for the last group's third word
      const buffer = new ArrayBuffer((Math.ceil((end + 4) / 4) + 16) * 4);
      this.bytes = new Uint8Array(buffer);
      this.words = new Uint32Array(buffer);
      this.text = Buffer.from(buffer);
    }
    const out = this.bytes;
    out[3] = QUOTE;
    if (n === 0) {
      out[4] = QUOTE;
      return out.subarray(3, 5);
    }
    let i = 0;
    if (LITTLE_ENDIAN) {
      const words = this.words;
      const pair = PAIR;
      // bytes b0 b1 b2 b3 -> "h0 h1 h2 h3 " in three words: [h0 h0 sp h1] [h1 sp h2 h2] [sp h3 h3 sp]
      let w = 1;
      for (const groups = n & ~3; i < groups; i += 4) {
        const p0 = pair[b[i]!]!;
        const p1 = pair[b[i + 1]!]!;
        const p2 = pair[b[i + 2]!]!;
        const p3 = pair[b[i + 3]!]!;
        words[w++] = p0 | (SPACE << 16) | ((p1 & 0xff) << 24);
        words[w++] = (p1 >> 8) | (SPACE << 8) | (p2 << 16);
        words[w++] = SPACE | (p3 << 8) | (SPACE << 24);
      }
    }
    for (let j = 4 + 3 * i; i < n; i++) {
      const x = b[i]!;
      out[j++] = HEX_DIGIT_CODES[x >> 4]!;
      out[j++] = HEX_DIGIT_CODES[x & 15]!;
      out[j++] = SPACE;
    }
    // the closing quote takes the place of the space after the last byte
    out[end - 1] = QUOTE;
    return out.subarray(3, end);
  }
}
