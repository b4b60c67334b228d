/**
 * The return path (destination -> source) checked against the main channel, as QEMU's
 * source_return_path_thread and the destination's senders behave (savevm-main-channel.md
 * §4.3, vfio-and-multifd.md §7).
 */
import { optionalIntField } from '../layout/fields.js';
import {
  MIG_RP_MSG_PONG,
  MIG_RP_MSG_REQ_PAGES,
  MIG_RP_MSG_REQ_PAGES_ID,
  MIG_RP_MSG_SHUT,
  MIG_RP_MSG_SWITCHOVER_ACK,
} from '../../grammar/savevm.js';
import { hex, StreamError } from '../model/errors.js';
import { StreamReader } from '../io/reader.js';
import { decodeReturnPath } from '../returnpath/codec.js';
import type { ReferenceLoader } from './load.js';
import { diagnosticFromStreamError, type Diagnostic } from '../model/diagnostic.js';
import { ruleSpec, type RuleId } from '../../grammar/rules.js';
import type { ChannelInput } from './multifd-load.js';

export function checkReturnPath(main: ReferenceLoader, ch: ChannelInput): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (rule: RuleId, offset: number, message: string): void =>
    void out.push({
      rule,
      channel: ch.name,
      severity: ruleSpec(rule).severity,
      offset,
      path: `return path @${hex(offset)}`,
      message,
    });
  // PINGs not answered yet. A PONG may answer any of them: after POSTCOPY_LISTEN the destination
  // reads the package in its main thread and the rest of the channel in its listen thread, and
  // each answers the PINGs it reads, so a PING after the package can be answered first.
  const outstanding = [...main.facts.pings];
  let shutAt: number | undefined;
  let acks = 0;
  try {
    for (const m of decodeReturnPath(new StreamReader(ch.source))) {
      if (shutAt !== undefined)
        report(
          'return-path/shut-not-last',
          m.offset,
          `${m.name} after MIG_RP_MSG_SHUT (at ${hex(shutAt)}): the source stops reading at SHUT`,
        );
      switch (m.type) {
        case MIG_RP_MSG_SHUT: {
          shutAt = m.offset;
          const status = optionalIntField(m.fields, 'status');
          if (status !== 0)
            report(
              'return-path/shut-error',
              m.offset,
              `MIG_RP_MSG_SHUT with status ${status ?? 'missing'}: the destination failed`,
            );
          break;
        }
        case MIG_RP_MSG_PONG: {
          const value = optionalIntField(m.fields, 'value');
          const answered = outstanding.findIndex((p) => p.value === value);
          const ping = answered >= 0 ? outstanding.splice(answered, 1)[0] : outstanding[0];
          if (!ping)
            report(
              'return-path/pong-without-ping',
              m.offset,
              `MIG_RP_MSG_PONG ${value ?? 'missing'} answers no MIG_CMD_PING of the main channel`,
            );
          else if (answered < 0)
            report(
              'return-path/pong-value',
              m.offset,
              `MIG_RP_MSG_PONG ${value ?? 'missing'} answers no unanswered MIG_CMD_PING (the first is ${ping.value}, main channel ${hex(ping.offset)})`,
            );
          break;
        }
        case MIG_RP_MSG_REQ_PAGES_ID:
        case MIG_RP_MSG_REQ_PAGES:
          if (!main.hasCapability('postcopy-ram'))
            report('return-path/req-pages', m.offset, `${m.name} without postcopy-ram`);
          break;
        case MIG_RP_MSG_SWITCHOVER_ACK:
          acks++;
          if (!main.hasCapability('switchover-ack'))
            report(
              'return-path/switchover-ack-unexpected',
              m.offset,
              'MIG_RP_MSG_SWITCHOVER_ACK, but switchover-ack is off',
            );
          else if (acks > 1)
            report('return-path/switchover-ack-unexpected', m.offset, 'a second MIG_RP_MSG_SWITCHOVER_ACK');
          break;
        default:
          if (!m.fields) report('return-path/unknown-message', m.offset, `unknown return-path message type ${m.type}`);
      }
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    out.push(diagnosticFromStreamError(e, ch.name));
  }
  if (shutAt === undefined)
    report('return-path/shut-missing', 0, 'no MIG_RP_MSG_SHUT: the capture ends before the destination finished');
  return out;
}
