/**
 * JSON text exactly as Python's json.dumps(indent=4, separators=(',', ': ')) writes it
 * (ensure_ascii on): what analyze-migration.py prints, so diffs against it are empty.
 * Objects are Maps (key order is the point) or plain objects from JSON.parse.
 */
export type PyValue =
  | string
  | number
  | boolean
  | null
  | PyValue[]
  | Map<string, PyValue>
  | PyLazyObject
  | PyJsonText
  | { [k: string]: PyValue };

/** An object whose entries are made while it is written (a dump's guest pages): never held whole. */
export class PyLazyObject {
  constructor(readonly entries: () => Iterable<[string, PyValue]>) {}
}

/** A value already written as JSON text (a page's hex string, quotes included): copied as it is. */
export class PyJsonText {
  constructor(readonly json: string) {}
}

/** Text is handed to `emit` in pieces of about this size (one page of hex is 12 KiB). */
const EMIT_CHUNK = 1 << 16;

export function pyDumps(v: PyValue, indent = 4): string {
  const out: string[] = [];
  pyWrite(v, (s) => out.push(s), indent);
  return out.join('');
}

/** pyDumps, written through `emit` as it is made: memory bounded by the largest value, not the document. */
export function pyWrite(v: PyValue, emit: (text: string) => void, indent = 4): void {
  let parts: string[] = [];
  let pending = 0;
  const push = (...s: string[]): void => {
    for (const x of s) {
      parts.push(x);
      pending += x.length;
    }
    if (pending >= EMIT_CHUNK) flush();
  };
  const flush = (): void => {
    if (parts.length) emit(parts.join(''));
    parts = [];
    pending = 0;
  };
  write(v, 0);
  flush();

  function write(x: PyValue, level: number): void {
    if (x === null) push('null');
    else if (typeof x === 'string') push(pyString(x));
    else if (typeof x === 'boolean') push(x ? 'true' : 'false');
    else if (typeof x === 'number') push(Number.isInteger(x) ? String(x) : pyFloat(x));
    else if (x instanceof PyJsonText) push(x.json);
    else if (Array.isArray(x)) {
      if (x.length === 0) {
        push('[]');
        return;
      }
      push('[');
      x.forEach((item, i) => {
        push(i ? ',\n' : '\n', ' '.repeat(indent * (level + 1)));
        write(item, level + 1);
      });
      push('\n', ' '.repeat(indent * level), ']');
    } else {
      const entries = x instanceof PyLazyObject ? x.entries() : x instanceof Map ? x.entries() : Object.entries(x);
      let i = 0;
      for (const [k, item] of entries) {
        push(i++ ? ',\n' : '{\n', ' '.repeat(indent * (level + 1)), pyString(k), ': ');
        write(item, level + 1);
      }
      push(i ? `\n${' '.repeat(indent * level)}}` : '{}');
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

/** Python escapes every non-ASCII code unit as \uxxxx (lowercase hex). */
export function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Python's json.dumps of a JSON document (the vmdescription, as analyze-migration.py's `-d desc`). */
export function pyDumpsJson(text: string, check?: (v: unknown) => void, indent = 4): string {
  // JSON.parse yields exactly the values PyValue describes
  const v = JSON.parse(text) as PyValue;
  check?.(v);
  return pyDumps(v, indent);
}
