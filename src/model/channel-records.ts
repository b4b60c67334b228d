import type { MultifdRecord } from './multifd-records.js';
import type { MainRecord } from './records.js';
import type { ReturnPathRecord } from './returnpath-records.js';

/** The three kinds of byte stream a migration has. */
export type ChannelKind = 'main' | 'multifd' | 'return-path';
/** A record of any channel. */
export type AnyRecord = MainRecord | MultifdRecord | ReturnPathRecord;

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
