/** What `decode()` / `judgeLive()` and their worker (decode-worker.ts) say to each other. */
import type { SharedRing } from '../io/shared-ring.js';
import type { DestinationProfile } from '../loader/profile.js';
import type { DiagnosticJson } from '../model/diagnostic.js';
import type { StreamErrorJson } from '../model/errors.js';
import type { DecodeWarning, MainRecord } from '../model/records.js';

export interface DecodeWorkerData {
  ring: SharedRing;
  /** one int32: how many more batches the worker may post before the caller consumes one */
  credits: SharedArrayBuffer;
  name: string;
  /** a vmdescription to decode device sections with (a stream read as it arrives has its own only at the end) */
  vmdescJson?: string;
  pageSize?: number;
  capabilities: string[];
  /** judge the stream in the worker and post notes, not records (`judgeLive`) */
  judge?: JudgeRequest;
  /**
   * the input is a multifd channel, judged on its own (`judgeLiveMultifd`): its channel id, and
   * whether every RAM packet is noted (tap --mutate draws from them) or only SYNC and device state
   */
  multifd?: { channel: number; everyPacket: boolean };
}

/** The destination the reference loader judges a live stream for. */
export interface JudgeRequest {
  /** destination capabilities (QEMU names) */
  capabilities: string[];
  profile?: DestinationProfile;
}

/** What a live stream's judge reports: the records worth showing, and what the loader said. */
export type LiveNote =
  | {
      note: 'section';
      offset: number;
      section: string;
      sectionId: number;
      idstr: string;
      /** inside MIG_CMD_PACKAGED (postcopy's device state) */
      packaged?: true;
    }
  /** a section's end (its footer, or the next record where it has none): `offset` is its header's, `bytes` all it took */
  | {
      note: 'section-end';
      offset: number;
      section: string;
      sectionId: number;
      idstr: string;
      bytes: number;
      packaged?: true;
    }
  /** a round of RAM's dirty-page walk ended (live-watch.ts): the pages it sent (zero pages too) */
  | { note: 'ram-round'; offset: number; round: number; pages: number }
  /** a VFIO_MIG_FLAG_* tag of the VFIO device `idstr` */
  | { note: 'vfio-tag'; offset: number; tag: string; idstr: string; packaged?: true }
  | { note: 'command'; offset: number; command: string; packaged?: true }
  | { note: 'eof'; offset: number; packaged?: true }
  /** a multifd RAM packet with MULTIFD_FLAG_SYNC: the end of a round of dirty pages on this channel */
  | { note: 'multifd-sync'; offset: number; packetNum: number }
  /** any other multifd RAM packet, noted only when asked (a candidate for tap --mutate; not shown) */
  | { note: 'multifd-packet'; offset: number; packetNum: number }
  /** a multifd device-state packet (VFIO state over multifd, QEMU 10.0+) */
  | { note: 'multifd-device-state'; offset: number; idstr: string; instanceId: number }
  /**
   * a diagnostic of the record at `offset` (or of the stream's end); every byte before `clean`
   * belongs to records judged before it
   */
  | { note: 'diagnostic'; offset: number; clean: number; diagnostic: DiagnosticJson };

/** A batch of notes; every byte before `through` belongs to a record the loader has judged. */
export interface LiveNotes {
  notes: LiveNote[];
  through: number;
}

export type DecodeWorkerMessage =
  /** a worker started without its job: loaded, waiting for it (SpareWorker) */
  | { type: 'ready' }
  | { type: 'records'; records: MainRecord[] }
  | ({ type: 'notes' } & LiveNotes)
  | { type: 'warning'; warning: DecodeWarning }
  | { type: 'end'; bytes: number }
  | { type: 'error'; stream?: StreamErrorJson; usage?: string; internal?: string };
