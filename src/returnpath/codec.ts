import {
  MIG_RP_MSG_MAX_LEN,
  MIG_RP_MSG_RECV_BITMAP,
  RAMBLOCK_RECV_BITMAP_ENDING,
  ReturnPathHeader,
  rpMessageByValue,
} from '../../grammar/savevm.js';
import { hex } from '../model/errors.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { readLayout } from '../layout/read.js';
import { writeLayout } from '../layout/write.js';
import { readMessagePayload, writeMessagePayload } from '../layout/message.js';
import { fieldOffset } from '../../grammar/layout.js';
import type { ReturnPathRecord } from '../model/returnpath-records.js';

/** Decodes a return-path capture (destination -> source). */
export function* decodeReturnPath(r: StreamReader): Generator<ReturnPathRecord> {
  while (!r.atEnd()) {
    const offset = r.offset;
    r.path.push(`return-path message @${hex(offset)}`);
    const h = readLayout(r, ReturnPathHeader, 'message header');
    const type = h.type;
    const len = h.len;
    const def = rpMessageByValue.get(type);
    if (len > MIG_RP_MSG_MAX_LEN)
      throw r.error('bad-value', `a return-path message of at most ${MIG_RP_MSG_MAX_LEN} bytes`, `${len}`, offset + 2);
    const rec: ReturnPathRecord = {
      kind: 'rp_message',
      offset,
      length: 0,
      type,
      name: def?.name ?? `MIG_RP_MSG_${type}`,
      len,
    };
    if (!def) rec.data = r.copyBytes(len, 'message payload');
    else {
      rec.fields = readMessagePayload(r, def, len, 'bad-value', offset + fieldOffset(ReturnPathHeader, 'len'));
      if (type === MIG_RP_MSG_RECV_BITMAP) {
        const size = r.be64('received bitmap size');
        if (size > 1n << 32n) throw r.error('limit', 'a received bitmap of at most 4 GiB', `${size}`);
        const data = r.copyBytes(Number(size), 'received bitmap');
        const ending = r.be64('received bitmap end marker');
        if (ending !== RAMBLOCK_RECV_BITMAP_ENDING)
          throw r.error('bad-value', `the end marker ${hex(RAMBLOCK_RECV_BITMAP_ENDING)}`, hex(ending));
        rec.bitmap = { size, data, ending };
      }
    }
    rec.length = r.offset - offset;
    r.path.pop();
    yield rec;
  }
}

export function encodeReturnPathRecord(w: StreamWriter, rec: ReturnPathRecord): void {
  writeLayout(w, ReturnPathHeader, { type: rec.type, len: rec.len });
  if (rec.data) w.bytes(rec.data);
  else if (rec.fields) {
    const def = rpMessageByValue.get(rec.type);
    if (def) writeMessagePayload(w, def, rec.fields, rec.len);
  }
  if (rec.bitmap) {
    w.be64(rec.bitmap.size);
    w.bytes(rec.bitmap.data);
    w.be64(rec.bitmap.ending);
  }
}
