import type { LayoutValue } from '../../grammar/layout.js';
import type { RecordBase } from './records.js';

/** One return-path message (destination to source). */
export interface ReturnPathRecord extends RecordBase {
  kind: 'rp_message';
  type: number;
  name: string;
  len: number;
  fields?: LayoutValue;
  /** payload of a message type QEMU does not define */
  data?: Uint8Array;
  /** RECV_BITMAP: the bitmap that follows the message, and its end marker */
  bitmap?: { size: bigint; data: Uint8Array; ending: bigint };
}
