/** What `decode()` and its worker (decode-worker.ts) say to each other. */
import type { SharedRing } from '../io/shared-ring.js';
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
}

export type DecodeWorkerMessage =
  | { type: 'records'; records: MainRecord[] }
  | { type: 'warning'; warning: DecodeWarning }
  | { type: 'end'; bytes: number }
  | { type: 'error'; stream?: StreamErrorJson; usage?: string; internal?: string };
