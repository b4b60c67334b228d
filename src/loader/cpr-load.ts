/**
 * The CPR state channel judged as QEMU's cpr_state_load reads it (grammar/cpr.ts): the
 * header and framing are the decoder's (a wrong magic or version is a stream error, with
 * QEMU's words); what QEMU accepts but cannot use, or never reads, is checked here.
 */
import { CPR_FD_DUMMY_BYTE } from '../../grammar/cpr.js';
import { ruleSpec, type RuleId } from '../../grammar/rules.js';
import { decodeCprChannel } from '../cpr/codec.js';
import { StreamReader } from '../io/reader.js';
import { diagnosticFromStreamError, type Diagnostic } from '../model/diagnostic.js';
import { hex, StreamError } from '../model/errors.js';
import type { ChannelInput } from './multifd-load.js';

export function checkCprChannel(ch: ChannelInput): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (rule: RuleId, offset: number, path: string, message: string): void =>
    void out.push({ rule, severity: ruleSpec(rule).severity, offset, path, message });
  const seen = new Map<string, number>();
  let fds = 0;
  try {
    for (const rec of decodeCprChannel(new StreamReader(ch.source))) {
      if (rec.kind === 'cpr_trailing')
        report(
          'cpr/trailing-bytes',
          rec.offset,
          'CPR state',
          `${rec.length} bytes after the end of the fds list, which QEMU does not read`,
        );
      if (rec.kind !== 'cpr_fd') continue;
      const path = `CPR state > cpr fd ${fds++} @${hex(rec.offset)}`;
      const nameAt = rec.offset + 5;
      const n = rec.nameBytes.length;
      if (n === 0) report('cpr/fd-name', nameAt, path, 'namelen 0: the name is no string at all');
      else if (rec.nameBytes[n - 1] !== 0)
        report('cpr/fd-name', nameAt, path, `name ${JSON.stringify(rec.name)} does not end in NUL`);
      if (rec.fdByte !== CPR_FD_DUMMY_BYTE)
        report(
          'cpr/fd-byte',
          rec.offset + rec.length - 1,
          path,
          `${rec.name} ${rec.id}: the descriptor's byte is ${hex(rec.fdByte)}, QEMU sends ' ' (0x20)`,
        );
      const key = `${rec.name}\u0000${rec.id}`;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, rec.offset);
      else
        report(
          'cpr/duplicate-fd',
          rec.offset,
          path,
          `${rec.name} ${rec.id} again (first at ${hex(first)}): QEMU finds only the first`,
        );
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    out.push(diagnosticFromStreamError(e, ch.name));
  }
  return out.map((d) => ({ ...d, channel: ch.name }));
}
