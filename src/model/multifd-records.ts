import type { ValueOf } from '../../grammar/layout.js';
import type {
  MultifdDeviceStateBody,
  MultifdInit,
  MultifdPacketHeader,
  MultifdRamPacketBody,
} from '../../grammar/multifd.js';
import type { RecordBase } from './records.js';

/** MultiFDInit_t: the first bytes of a multifd channel (magic, version, UUID, channel id). */
export interface MultifdInitRecord extends RecordBase {
  kind: 'multifd_init';
  fields: ValueOf<typeof MultifdInit>;
}

/** A RAM packet (MultiFDPacket_t), SYNC packets included; offsets kept as their raw bytes. */
export interface MultifdRamPacketRecord extends RecordBase {
  kind: 'multifd_packet';
  header: ValueOf<typeof MultifdPacketHeader>;
  fields: ValueOf<typeof MultifdRamPacketBody>;
  offsets: Uint8Array;
}

/** MultiFDPacketDeviceState_t: a packet of device state (VFIO) sent on a multifd channel. */
export interface MultifdDeviceStatePacketRecord extends RecordBase {
  kind: 'multifd_device_state';
  header: ValueOf<typeof MultifdPacketHeader>;
  fields: ValueOf<typeof MultifdDeviceStateBody>;
}

/** The VFIODeviceStatePacket header at the start of a VFIO device-state payload (big-endian). */
export interface MultifdVfioBufferRecord extends RecordBase {
  kind: 'multifd_vfio_buffer';
  version: number;
  idx: number;
  flags: number;
}

/** Bytes after a packet: page data, a compressed stream chunk, or a device-state buffer. */
export interface MultifdPayloadRecord extends RecordBase {
  kind: 'multifd_payload';
  data: Uint8Array;
}

/** A record of a multifd channel. */
export type MultifdRecord =
  | MultifdInitRecord
  | MultifdRamPacketRecord
  | MultifdDeviceStatePacketRecord
  | MultifdVfioBufferRecord
  | MultifdPayloadRecord;
