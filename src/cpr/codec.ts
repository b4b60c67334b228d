/** The CPR state channel, both directions: header, the fds list, its end (grammar/cpr.ts). */
import { CprFd, CprHeader, QEMU_CPR_FILE_MAGIC, QEMU_CPR_FILE_VERSION } from '../../grammar/cpr.js';
import { latin1, type StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { readLayout } from '../layout/read.js';
import { writeLayout } from '../layout/write.js';
import type { CprRecord } from '../model/cpr-records.js';
import { hex } from '../model/errors.js';

/** Bytes of trailing data read into one record at most: more is split into several. */
const TRAILING_CHUNK = 1 << 20;

/** The name up to its first NUL, as QEMU's strcmp sees it. */
function nameText(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return latin1(nul < 0 ? b : b.subarray(0, nul));
}

/** Decodes a CPR state channel capture. */
export function* decodeCprChannel(r: StreamReader): Generator<CprRecord> {
  r.path.push('CPR state');
  const h = readLayout(r, CprHeader, 'CPR header');
  if (h.magic !== QEMU_CPR_FILE_MAGIC)
    throw r.error(
      'bad-magic',
      `QEMU_CPR_FILE_MAGIC ${hex(QEMU_CPR_FILE_MAGIC)}`,
      `Not a migration stream (bad magic ${h.magic.toString(16)})`,
      0,
    );
  if (h.version !== QEMU_CPR_FILE_VERSION)
    throw r.error(
      'bad-version',
      `QEMU_CPR_FILE_VERSION ${QEMU_CPR_FILE_VERSION}`,
      `Unsupported migration stream version ${h.version}`,
      4,
    );
  yield { kind: 'cpr_header', offset: 0, length: 8, magic: h.magic, version: h.version };
  for (let i = 0; ; i++) {
    const offset = r.offset;
    const more = r.u8('CprState fds: another element or the end (0)');
    if (more === 0) {
      yield { kind: 'cpr_end', offset, length: 1 };
      break;
    }
    r.path.push(`cpr fd ${i} @${hex(offset)}`);
    const f = readLayout(r, CprFd, 'cpr fd');
    r.path.pop();
    const id = f.id | 0;
    yield {
      kind: 'cpr_fd',
      offset,
      length: r.offset - offset,
      more,
      nameBytes: f.name,
      name: nameText(f.name),
      id,
      fdByte: f.fdByte,
    };
  }
  while (!r.atEnd()) {
    const offset = r.offset;
    const data = r.copyBytes(Math.min(TRAILING_CHUNK, r.available), 'bytes after the fds list');
    yield { kind: 'cpr_trailing', offset, length: data.length, data };
  }
  r.path.pop();
}

export function encodeCprRecord(w: StreamWriter, rec: CprRecord): void {
  switch (rec.kind) {
    case 'cpr_header':
      writeLayout(w, CprHeader, { magic: rec.magic, version: rec.version });
      break;
    case 'cpr_fd':
      w.u8(rec.more);
      writeLayout(w, CprFd, {
        namelen: rec.nameBytes.length,
        name: rec.nameBytes,
        id: rec.id >>> 0,
        fdByte: rec.fdByte,
      });
      break;
    case 'cpr_end':
      w.u8(0);
      break;
    case 'cpr_trailing':
      w.bytes(rec.data);
      break;
  }
}
