/**
 * What the reference loader reports: one finding, named by a rule of the catalogue
 * (grammar/rules.ts), with where it is (channel, byte offset, section path).
 */
import type { RuleId, RuleSeverity } from '../../grammar/rules.js';
import { hex, PATH_SEPARATOR, type StreamError } from './errors.js';

/** One violation a loader rule finds: rule id (docs/validate-rules.md), severity, byte offset, section path and message. */
export interface Diagnostic {
  rule: RuleId;
  /** the capture the offset is in, when it is not the main channel */
  channel?: string;
  severity: RuleSeverity;
  offset: number;
  path: string;
  message: string;
}

/** A decode error ends the channel: QEMU would have failed reading it. */
export function diagnosticFromStreamError(e: StreamError, channel?: string): Diagnostic {
  return {
    rule: `stream/${e.code}`,
    ...(channel === undefined ? {} : { channel }),
    severity: 'error',
    offset: e.offset,
    path: e.path.join(PATH_SEPARATOR),
    message: `expected ${e.expected}, found ${e.found}`,
  };
}

/**
 * A diagnostic as every JSON document migstream writes carries it: the section path as an
 * array (outermost first, empty for the stream as a whole) and the offset both as a number
 * and in hex, as the text output and hexdumps show it.
 */
export interface DiagnosticJson {
  rule: RuleId;
  severity: RuleSeverity;
  channel?: string;
  offset: number;
  offsetHex: string;
  path: string[];
  message: string;
}

/** The JSON form of a diagnostic (validate --format json, and every JSON document with diagnostics). */
export function diagnosticJson(d: Diagnostic): DiagnosticJson {
  return {
    rule: d.rule,
    severity: d.severity,
    ...(d.channel === undefined ? {} : { channel: d.channel }),
    offset: d.offset,
    offsetHex: hex(d.offset),
    path: pathParts(d.path),
    message: d.message,
  };
}

/** A joined path back as its parts (none for the stream as a whole). */
export function pathParts(path: string): string[] {
  return path === '' ? [] : path.split(PATH_SEPARATOR);
}
