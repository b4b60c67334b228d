import { MULTIFD_FLAG_COMPRESSION_MASK, MultifdFlag } from '../../grammar/multifd.js';
import { StreamReader } from '../io/reader.js';
import type { ByteSource } from '../io/source.js';
import { StreamError } from '../model/errors.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { cString, decodeMultifdChannel } from './codec.js';

/**
 * One round of a multifd channel: what it carried up to and including a packet with
 * MULTIFD_FLAG_SYNC (QEMU's multifd_send_sync_main sends one on every channel each time the
 * main channel flushes RAM, so rounds line up across channels and with the RAM iterations).
 */
export interface MultifdRound {
  bytes: number;
  packets: number;
  /** normal and zero pages */
  pages: number;
  /** false for the last round when the channel ends without a SYNC after it */
  synced: boolean;
}

/** Per-channel figures for `dump --format summary` and `stats` of a multifd capture. */
export class MultifdSummary {
  channelId: number | undefined;
  /** every byte of the channel (records as decoded) */
  bytes = 0;
  readonly rounds: MultifdRound[] = [];
  private round: MultifdRound = { bytes: 0, packets: 0, pages: 0, synced: false };
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
    this.bytes += rec.length;
    this.round.bytes += rec.length;
    switch (rec.kind) {
      case 'multifd_init':
        this.channelId = rec.fields.id;
        break;
      case 'multifd_packet': {
        this.packets++;
        this.round.packets++;
        const flags = rec.header.flags;
        // the method of the packets that carry pages: a SYNC packet without pages has no compression flag
        if (rec.fields.normalPages > 0) this.compression = flags & MULTIFD_FLAG_COMPRESSION_MASK;
        this.normalPages += rec.fields.normalPages;
        this.zeroPages += rec.fields.zeroPages;
        this.round.pages += rec.fields.normalPages + rec.fields.zeroPages;
        this.lastDevice = undefined;
        if (flags & MultifdFlag.MULTIFD_FLAG_SYNC) {
          this.syncPackets++;
          this.closeRound(true);
        }
        break;
      }
      case 'multifd_device_state': {
        this.packets++;
        this.round.packets++;
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

  /** The rounds, the last one included when it carried anything after the last SYNC. */
  allRounds(): MultifdRound[] {
    return this.round.bytes > 0 ? [...this.rounds, { ...this.round }] : [...this.rounds];
  }

  private closeRound(synced: boolean): void {
    this.rounds.push({ ...this.round, synced });
    this.round = { bytes: 0, packets: 0, pages: 0, synced: false };
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
