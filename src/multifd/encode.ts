import { MemorySink, StreamWriter } from '../io/sink.js';
import { encodeMultifdRecord } from './codec.js';
import type { MultifdRecord } from './records.js';

export function encodeMultifd(records: readonly MultifdRecord[]): Uint8Array {
  const sink = new MemorySink();
  const w = new StreamWriter(sink);
  for (const r of records) encodeMultifdRecord(w, r);
  w.flush();
  return sink.bytes();
}
