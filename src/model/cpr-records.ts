import type { RecordBase } from './records.js';

/** The CPR state channel's records (grammar/cpr.ts): its header, one per file descriptor, the end of the list. */
export type CprRecord = CprHeaderRecord | CprFdRecord | CprEndRecord | CprTrailingRecord;

export interface CprHeaderRecord extends RecordBase {
  kind: 'cpr_header';
  magic: number;
  version: number;
}

/** A descriptor QEMU saved by name and id (vmstate_cpr_fd); the descriptor itself is not in the bytes. */
export interface CprFdRecord extends RecordBase {
  kind: 'cpr_fd';
  /** the byte before the element: QEMU writes 1, its loader takes any non-zero value */
  more: number;
  /** the name as sent, its NUL included */
  nameBytes: Uint8Array;
  /** the name up to its first NUL, latin1 */
  name: string;
  /** int32 */
  id: number;
  /** the dummy byte the descriptor travelled with (QEMU sends ' ') */
  fdByte: number;
}

/** The 0 byte that ends the list. */
export interface CprEndRecord extends RecordBase {
  kind: 'cpr_end';
}

/** Bytes after the end of the list (QEMU reads no further); kept so the channel re-encodes exactly. */
export interface CprTrailingRecord extends RecordBase {
  kind: 'cpr_trailing';
  data: Uint8Array;
}
