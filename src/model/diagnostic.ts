/**
 * What the reference loader reports: one finding, named by a rule of the catalogue
 * (grammar/rules.ts), with where it is (channel, byte offset, section path).
 */
import type { RuleId, RuleSeverity } from '../../grammar/rules.js';
import type { StreamError } from './errors.js';

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
    path: e.path.join(' > '),
    message: `expected ${e.expected}, found ${e.found}`,
  };
}
