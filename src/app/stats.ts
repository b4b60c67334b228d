/**
 * The stats use case: figures per section and per RAMBlock of a main stream, or a multifd
 * channel's packet figures. Returns data; printing it as a table is the command line's job.
 */
import { StreamError } from '../model/errors.js';
import { StreamSummary } from '../formats/summary.js';
import { detectChannelKind } from '../codec/channels.js';
import { summarizeMultifdChannel, type MultifdSummary } from '../multifd/summary.js';
import { openSource, openStreamFile, type StreamRequest } from './open.js';

export type StatsResult =
  | { channel: 'main'; summary: StreamSummary; error?: StreamError }
  | { channel: 'multifd'; summary: MultifdSummary; error?: StreamError };

export function streamStats(file: string, o: StreamRequest): StatsResult {
  const src = openSource(file);
  if (detectChannelKind(src) === 'multifd') {
    const { summary, error } = summarizeMultifdChannel(src, o.pageSize);
    src.close();
    return { channel: 'multifd', summary, error };
  }
  src.close();
  const s = openStreamFile(file, o);
  const summary = new StreamSummary();
  let error: StreamError | undefined;
  try {
    for (const rec of s.records()) {
      summary.closeOpenSection(rec);
      summary.add(rec);
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    error = e;
  } finally {
    s.close();
  }
  return { channel: 'main', summary, error };
}
