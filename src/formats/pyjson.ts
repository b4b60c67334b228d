/**
 * JSON text exactly as Python's json.dumps(indent=4, separators=(',', ': ')) writes it
 * (ensure_ascii on): what analyze-migration.py prints, so diffs against it are empty.
 * Objects are Maps (key order is the point) or plain objects from JSON.parse.
 */
import { latin1 } from '../io/reader.js';

export type PyValue =
  | string
  | number
  | boolean
  | null
  | PyValue[]
  | Map<string, PyValue>
  | PyLazyObject
  | PyJsonText
  | PyJsonBytes
  | PyRendered
  | { [k: string]: PyValue };

/** An object whose entries are made while it is written (a dump's guest pages): never held whole. */
export class PyLazyObject {
  constructor(readonly entries: () => Iterable<[string, PyValue]>) {}
}

/** A value already written as JSON text (a page's hex string, quotes included): copied as it is. */
export class PyJsonText {
  constructor(readonly json: string) {}
}

/**
 * A value already written as JSON text, as its ASCII bytes (a page's hex under --ram hex): handed
 * to pyWrite's `emitBytes` as they are, or else copied into the text. The bytes are a view that
 * is valid only until the next value is made: a PyLazyObject's entries are to be written (or
 * read) one by one as they come, not collected first.
 */
export class PyJsonBytes {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * A value that writes its own JSON text, indented for the level it is written at: a long list of
 * numbers made in one piece, where a string an element cost most of a device-heavy dump's GC.
 */
export abstract class PyRendered {
  /** The JSON text, its lines indented by `indent` spaces a level, at nesting `level`. */
  abstract render(level: number, indent: number): string;
}

/** Text is handed to `emit` in pieces of about this size (one page of hex is 12 KiB). */
const EMIT_CHUNK = 1 << 16;

export function pyDumps(v: PyValue, indent = 4): string {
  const out: string[] = [];
  pyWrite(v, (s) => out.push(s), indent);
  return out.join('');
}

/**
 * pyDumps, written through `emit` as it is made: memory bounded by the largest value, not the
 * document. `emitBytes`: where PyJsonBytes go as they are, after the text before them (without
 * it they join the text).
 */
export function pyWrite(
  v: PyValue,
  emit: (text: string) => void,
  indent = 4,
  emitBytes?: (bytes: Uint8Array) => void,
): void {
  // one string grown with += (V8 joins the pieces once, when it is handed out) and the line
  // breaks with their indentation made once per level, instead of an array of pieces and a
  // ' '.repeat() per line: with the byte-table hex of analyze.ts, q35-devices-running's dump
  // takes 10% less time
  let text = '';
  const breaks: string[] = [];
  const lineBreak = (level: number): string => (breaks[level] ??= '\n' + ' '.repeat(indent * level));
  write(v, 0);
  if (text) emit(text);

  function write(x: PyValue, level: number): void {
    if (x === null) text += 'null';
    else if (typeof x === 'string') text += pyString(x);
    else if (typeof x === 'boolean') text += x ? 'true' : 'false';
    else if (typeof x === 'number') text += Number.isInteger(x) ? String(x) : pyFloat(x);
    else if (x instanceof PyJsonText) text += x.json;
    else if (x instanceof PyRendered) text += x.render(level, indent);
    else if (x instanceof PyJsonBytes) {
      if (emitBytes) {
        if (text) emit(text);
        text = '';
        emitBytes(x.bytes);
      } else text += latin1(x.bytes);
    } else if (Array.isArray(x)) {
      if (x.length === 0) {
        text += '[]';
        return;
      }
      text += '[';
      for (let i = 0; i < x.length; i++) {
        text += (i ? ',' : '') + lineBreak(level + 1);
        write(x[i] ?? null, level + 1);
      }
      text += lineBreak(level) + ']';
    } else {
      const entries = x instanceof PyLazyObject ? x.entries() : x instanceof Map ? x.entries() : Object.entries(x);
      let i = 0;
      for (const [k, item] of entries) {
        text += (i++ ? ',' : '{') + lineBreak(level + 1) + pyString(k) + ': ';
        write(item, level + 1);
      }
      text += i ? lineBreak(level) + '}' : '{}';
    }
    if (text.length >= EMIT_CHUNK) {
      emit(text);
      text = '';
    }
  }
}

/**
 * A float as Python's repr writes it: the shortest digits that read back the same (as JS),
 * in exponent form when the decimal exponent is below -4 or at least 16 (JS switches at -7
 * and 21), the exponent signed and at least two digits; json.dumps writes the non-finite
 * ones as Infinity, -Infinity and NaN.
 */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  const [mantissa = '', e = '0'] = x.toExponential().split('e');
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const s = String(x);
  return s.includes('.') ? s : s + '.0';
}

/** Printable ASCII but `"` and `\\`: what JSON and Python write as it is. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Python escapes every non-ASCII code unit as \uxxxx (lowercase hex). */
export function pyString(s: string): string {
  // most strings (field names, hex) are printable ASCII without a quote or backslash: nothing to escape
  if (PLAIN_ASCII.test(s)) return `"${s}"`;
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Python's json.dumps of a JSON document (the vmdescription, as analyze-migration.py's `-d desc`). */
export function pyDumpsJson(text: string, check?: (v: unknown) => void, indent = 4): string {
  // JSON.parse yields exactly the values PyValue describes
  const v = JSON.parse(text) as PyValue;
  check?.(v);
  return pyDumps(v, indent);
}
