import type { LayoutValue } from '../layout/types.js';
import type { RecordBase } from '../codec/records.js';

export interface MultifdInitRecord extends RecordBase {
  kind: 'multifd_init';
  fields: LayoutValue;
}

/** A RAM packet (MultiFDPacket_t), SYNC packets included; offsets kept as their raw bytes. */
export interface MultifdRamPacketRecord extends RecordBase {
  kind: 'multifd_packet';
  header: LayoutValue;
  fields: LayoutValue;
  offsets: Uint8Array;
}

export interface MultifdDeviceStatePacketRecord extends RecordBase {
  kind: 'multifd_device_state';
  header: LayoutValue;
  fields: LayoutValue;
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

export type MultifdRecord = MultifdInitRecord | MultifdRamPacketRecord | MultifdDeviceStatePacketRecord | MultifdVfioBufferRecord | MultifdPayloadRecord;
