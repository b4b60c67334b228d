import type { LayoutField } from '../../grammar/layout.js';
import type { StreamErrorCode } from '../../grammar/rules.js';
import { hex } from '../model/errors.js';

/** What a field's `expect` says about a value read for it: nothing, or the error to report. */
export interface ExpectMismatch {
  readonly code: StreamErrorCode;
  readonly expected: string;
  readonly found: string;
}

/**
 * The one meaning of `expect`, shared by the streaming reader and the compiled parsers: a
 * field named `magic` is a magic number (reported in hex, as `bad-magic`); any other field
 * holds a fixed value (`bad-value`).
 */
export function expectMismatch(f: LayoutField, label: string, v: unknown): ExpectMismatch | undefined {
  if (f.expect === undefined || v === f.expect) return undefined;
  if (f.name === 'magic') {
    const found = typeof v === 'number' || typeof v === 'bigint' ? hex(v) : String(v);
    return { code: 'bad-magic', expected: `${label} ${hex(f.expect)}`, found };
  }
  return { code: 'bad-value', expected: `${label} = ${f.expect}`, found: String(v) };
}
