/**
 * QEMU_VM_COMMAND records (MIG_CMD_*): the marker, the be16 command and length, and the
 * payload from the command table (grammar/savevm.ts), read and written by the same
 * "type, length, payload" interpreter as the return-path messages.
 */
import { CommandHeader, migCommandByValue, SectionType } from '../../grammar/savevm.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { readMessagePayload, writeMessagePayload } from '../layout/message.js';
import { readLayout } from '../layout/read.js';
import { writeLayout } from '../layout/write.js';
import { hex } from '../model/errors.js';
import type { CommandRecord } from '../model/records.js';

/** Marker byte + CommandHeader: where the length field is from the record's first byte */
const LEN_AT = 3;

export function readCommand(r: StreamReader, warn: (message: string, offset?: number) => void): CommandRecord {
  const offset = r.offset;
  r.u8();
  const { cmd, len } = readLayout(r, CommandHeader, 'QEMU_VM_COMMAND');
  const def = migCommandByValue.get(cmd);
  const name = def?.name ?? `MIG_CMD_${cmd}`;
  r.path.push(`${name} @${hex(offset)}`);
  let rec: CommandRecord;
  if (!def) {
    warn(`unknown command ${cmd} (QEMU rejects it); payload kept raw`, offset);
    rec = { kind: 'command', offset, length: 5 + len, cmd, name, len, data: r.copyBytes(len, 'command payload') };
  } else {
    rec = {
      kind: 'command',
      offset,
      length: 5 + len,
      cmd,
      name,
      len,
      fields: readMessagePayload(r, def, len, 'command-length', offset + LEN_AT),
    };
  }
  r.path.pop();
  return rec;
}

export function writeCommand(w: StreamWriter, rec: CommandRecord): void {
  w.u8(SectionType.QEMU_VM_COMMAND);
  writeLayout(w, CommandHeader, { cmd: rec.cmd, len: rec.len });
  const def = migCommandByValue.get(rec.cmd);
  if (rec.data) w.bytes(rec.data);
  else if (rec.fields && def) writeMessagePayload(w, def, rec.fields, rec.len);
}
