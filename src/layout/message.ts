import type { Layout, LayoutValue } from '../../grammar/layout.js';
import type { StreamErrorCode } from '../../grammar/rules.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { readLayout } from './read.js';
import { writeLayout } from './write.js';

/**
 * A "type, length, payload" table entry: a MIG_CMD_* command (grammar/savevm.ts MIG_COMMANDS)
 * or a return-path message (MIG_RP_MSG). The length field must be `len`, one of `lens`, or at
 * least `minLen`; the payload is read with `payload` and must use exactly that many bytes.
 */
export interface MessageDef {
  readonly name: string;
  readonly len?: number;
  /** a closed set of lengths; a length of 0 in it means the payload is absent */
  readonly lens?: readonly number[];
  readonly minLen?: number;
  readonly payload: Layout;
}

/** What the length field must be, in words, or undefined when `len` is allowed. */
export function lengthMismatch(def: MessageDef, len: number): string | undefined {
  if (def.len !== undefined) return len === def.len ? undefined : `${def.len}`;
  if (def.lens) return def.lens.includes(len) ? undefined : def.lens.join(' or ');
  return len >= (def.minLen ?? 0) ? undefined : `at least ${def.minLen ?? 0}`;
}

/**
 * Reads a message's payload of `len` bytes (the reader stands after the length field), with
 * both checks. `code` is the error a wrong length is reported as; `lenAt` where the length field is.
 */
export function readMessagePayload(
  r: StreamReader,
  def: MessageDef,
  len: number,
  code: StreamErrorCode,
  lenAt: number,
): LayoutValue {
  const want = lengthMismatch(def, len);
  if (want !== undefined) throw r.error(code, `${def.name} length ${want}`, `${len}`, lenAt);
  if (len === 0 && def.lens?.includes(0)) return {};
  const end = r.offset + len;
  const fields = readLayout(r, def.payload, def.name, end);
  if (r.offset !== end)
    throw r.error(code, `${def.name} payload of ${len} bytes`, `${r.offset - (end - len)} bytes decoded`);
  return fields;
}

/** The mirror of readMessagePayload (an absent payload writes nothing). */
export function writeMessagePayload(w: StreamWriter, def: MessageDef, fields: LayoutValue, len: number): void {
  if (len === 0 && def.lens?.includes(0)) return;
  writeLayout(w, def.payload, fields);
}
