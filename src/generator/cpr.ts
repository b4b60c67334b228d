/**
 * The CPR state channel the save engine writes: what QEMU's cpr_state_save sends after a
 * given sequence of cpr_save_fd(name, id, fd) calls (grammar/cpr.ts). cpr_save_fd puts each
 * new descriptor at the head of the list, so the wire lists them most recent first.
 */
import { CPR_FD_DUMMY_BYTE, QEMU_CPR_FILE_MAGIC, QEMU_CPR_FILE_VERSION } from '../../grammar/cpr.js';
import { latin1Bytes } from '../io/reader.js';
import type { CprRecord } from '../model/cpr-records.js';

/** One cpr_save_fd call: the name (a C string) and id a descriptor is saved under. */
export interface CprFdSave {
  name: string;
  id: number;
}

/** The records of the CPR state channel after `saved` (in call order), with their offsets. */
export function saveCprState(saved: readonly CprFdSave[]): CprRecord[] {
  const out: CprRecord[] = [
    { kind: 'cpr_header', offset: 0, length: 8, magic: QEMU_CPR_FILE_MAGIC, version: QEMU_CPR_FILE_VERSION },
  ];
  let offset = 8;
  for (const fd of [...saved].reverse()) {
    // namelen is strlen(name) + 1: the NUL goes on the wire
    const nameBytes = latin1Bytes(`${fd.name}\u0000`);
    // more byte, namelen, name, id, the descriptor's dummy byte
    const length = 1 + 4 + nameBytes.length + 4 + 1;
    out.push({
      kind: 'cpr_fd',
      offset,
      length,
      more: 1,
      nameBytes,
      name: fd.name,
      id: fd.id,
      fdByte: CPR_FD_DUMMY_BYTE,
    });
    offset += length;
  }
  out.push({ kind: 'cpr_end', offset, length: 1 });
  return out;
}
