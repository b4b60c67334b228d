import type { CprRecord } from './cpr-records.js';
import type { MultifdRecord } from './multifd-records.js';
import type { MainRecord } from './records.js';
import type { ReturnPathRecord } from './returnpath-records.js';

/** The kinds of byte stream a migration has (cpr: the CPR state channel of cpr-transfer, QEMU 10.0+). */
export type ChannelKind = 'main' | 'multifd' | 'return-path' | 'cpr';
/** A record of any channel. */
export type AnyRecord = MainRecord | MultifdRecord | ReturnPathRecord | CprRecord;

const CPR_KINDS: ReadonlySet<string> = new Set<CprRecord['kind']>(['cpr_header', 'cpr_fd', 'cpr_end', 'cpr_trailing']);

export function isCprRecord(rec: AnyRecord): rec is CprRecord {
  return CPR_KINDS.has(rec.kind);
}

const MULTIFD_KINDS: ReadonlySet<string> = new Set<MultifdRecord['kind']>([
  'multifd_init',
  'multifd_packet',
  'multifd_device_state',
  'multifd_vfio_buffer',
  'multifd_payload',
]);

export function isMultifdRecord(rec: AnyRecord): rec is MultifdRecord {
  return MULTIFD_KINDS.has(rec.kind);
}
