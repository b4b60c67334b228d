/**
 * One error type for everything wrong with a stream: where (absolute byte offset and the
 * record/section path that led there), what was expected and what was found.
 */
import type { StreamErrorCode } from '../../grammar/rules.js';

export type { StreamErrorCode };

/** A StreamError as JSON documents carry it (the IR trailer, JSON diagnostics). */
export interface StreamErrorJson {
  code: StreamErrorCode;
  offset: number;
  path: readonly string[];
  expected: string;
  found: string;
}

/** A stream that breaks the format: the byte offset, the section path, what was expected and what was found. */
export class StreamError extends Error {
  readonly code: StreamErrorCode;
  readonly offset: number;
  readonly path: readonly string[];
  readonly expected: string;
  readonly found: string;

  constructor(code: StreamErrorCode, offset: number, path: readonly string[], expected: string, found: string) {
    super(formatStreamError(offset, path, expected, found));
    this.name = 'StreamError';
    this.code = code;
    this.offset = offset;
    this.path = path;
    this.expected = expected;
    this.found = found;
  }

  /** The error as JSON documents carry it. */
  toJSON(): StreamErrorJson {
    return { code: this.code, offset: this.offset, path: this.path, expected: this.expected, found: this.found };
  }
}

/** How a path's parts are joined in messages and diagnostics (a StreamError's path, the loader's section path). */
export const PATH_SEPARATOR = ' > ';

export function hex(n: number | bigint): string {
  return '0x' + n.toString(16);
}

function formatStreamError(offset: number, path: readonly string[], expected: string, found: string): string {
  const where = path.length ? `${path.join(PATH_SEPARATOR)}: ` : '';
  return `at ${hex(offset)}: ${where}expected ${expected}, found ${found}`;
}

/** Usage or I/O problems (exit code 2), as opposed to an invalid stream (exit code 1). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
