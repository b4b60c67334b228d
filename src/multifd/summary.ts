import { MULTIFD_FLAG_COMPRESSION_MASK, MultifdFlag } from '../../grammar/multifd.js';
import { StreamReader } from '../io/reader.js';
import type { ByteSource } from '../io/source.js';
import { StreamError } from '../model/errors.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { cString, decodeMultifdChannel } from './codec.js';

/** Per-channel figures for `dump --format summary` of a multifd capture. */
export class MultifdSummary {
  channelId: number | undefined;
  packets = 0;
  syncPackets = 0;
  normalPages = 0;
  zeroPages = 0;
  payloadBytes = 0;
  compression = 0;
  readonly deviceState = new Map<string, number>();
  private lastDevice: string | undefined;

  /** Count the next record of the channel. */
  add(rec: MultifdRecord): void {
    switch (rec.kind) {
      case 'multifd_init':
        this.channelId = rec.fields.id;
        break;
      case 'multifd_packet': {
        this.packets++;
        const flags = rec.header.flags;
        if (flags & MultifdFlag.MULTIFD_FLAG_SYNC) this.syncPackets++;
        this.compression = flags & MULTIFD_FLAG_COMPRESSION_MASK;
        this.normalPages += rec.fields.normalPages;
        this.zeroPages += rec.fields.zeroPages;
        this.lastDevice = undefined;
        break;
      }
      case 'multifd_device_state': {
        this.packets++;
        this.lastDevice = `${cString(rec.fields.idstr)} (instance ${rec.fields.instanceId})`;
        break;
      }
      case 'multifd_vfio_buffer':
        if (this.lastDevice)
          this.deviceState.set(this.lastDevice, (this.deviceState.get(this.lastDevice) ?? 0) + rec.length);
        break;
      case 'multifd_payload':
        this.payloadBytes += rec.data.length;
        if (this.lastDevice)
          this.deviceState.set(this.lastDevice, (this.deviceState.get(this.lastDevice) ?? 0) + rec.data.length);
        break;
    }
  }

  /** The figures as JSON. */
  toJSON(): object {
    return {
      channel: 'multifd',
      channelId: this.channelId,
      packets: this.packets,
      syncPackets: this.syncPackets,
      normalPages: this.normalPages,
      zeroPages: this.zeroPages,
      payloadBytes: this.payloadBytes,
      compression: this.compression,
      deviceStateBytes: Object.fromEntries(this.deviceState),
    };
  }
}

/** A multifd channel read to its end or to its first decode error: its figures, and that error. */
export function summarizeMultifdChannel(
  src: ByteSource,
  pageSize?: number,
): { summary: MultifdSummary; error?: StreamError } {
  const summary = new MultifdSummary();
  try {
    for (const rec of decodeMultifdChannel(new StreamReader(src), pageSize)) summary.add(rec);
    return { summary };
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    return { summary, error: e };
  }
}
