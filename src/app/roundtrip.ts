/** The roundtrip use case: decode a stream file, re-encode it, compare with the file byte for byte. */
import type { ChannelKind } from '../codec/channels.js';
import { roundtripSource, type RoundtripResult } from '../codec/open.js';
import { UsageError } from '../model/errors.js';
import { openSource } from './open.js';

/** Decode a file and encode its records again, comparing with the file as the bytes are made (`migstream roundtrip`). */
export function roundtripFile(file: string, kind: ChannelKind | 'auto', snapshot?: string): RoundtripResult {
  if (file === '-') throw new UsageError('roundtrip compares with the input file: give a file, not stdin');
  return roundtripSource(openSource(file, snapshot), openSource(file, snapshot), { kind });
}
