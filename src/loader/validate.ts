import { checkCprChannel } from './cpr-load.js';
import { openMainStream, type OpenOptions } from '../codec/open.js';
import { StreamError } from '../model/errors.js';
import type { ByteSource } from '../io/source.js';
import type { MainRecord } from '../model/records.js';
import { ReferenceLoader, type Diagnostic, type LoadOptions } from './load.js';
import { MultifdJoin, type ChannelInput } from './multifd-load.js';
import { MultifdDataOffload } from './multifd-data-offload.js';
import { checkReturnPath } from './returnpath-load.js';
import { ruleSpec } from '../../grammar/rules.js';
import { DEFAULT_MULTIFD_CHANNELS } from '../../grammar/multifd.js';

/** The verdict: valid or not, every diagnostic, and the decoder's warnings. */
export interface ValidationResult {
  valid: boolean;
  diagnostics: Diagnostic[];
  warnings: { offset: number; path: string; message: string }[];
}

/** The multifd channels and return-path capture that belong with a main stream. */
export interface SideChannels {
  multifd?: ChannelInput[];
  returnPath?: ChannelInput;
  /**
   * Threads for compressed multifd channels' decompression (MultifdDataOffload; the verdict is
   * the same): 1 keeps it on this thread, N >= 2 uses up to N worker threads; undefined: the
   * machine's cores (at most 4) when the channels are files of 1 MiB or more together.
   */
  threads?: number;
}

/** Decode a main-channel stream (and its multifd channels and return path) and run the reference loader over them. */
export function validateMain(
  source: ByteSource,
  load: LoadOptions,
  open: OpenOptions = {},
  side: SideChannels = {},
): ValidationResult {
  // with a profile, device payloads are read by the destination's layouts, not the stream's own
  const vmdesc = open.vmdesc ?? load.profile?.vmdescription;
  // the loader only reads record payloads: an in-memory stream is read where it is
  const s = openMainStream(source, { readInPlace: true, ...open, vmdesc, capabilities: load.capabilities });
  const loader = new ReferenceLoader(load);
  judgeRecords(loader, (take) => s.decoder.eachRecord(take));
  return conclude(loader, load, open, side, s.warnings);
}

/**
 * Feed records to the loader until they end or one cannot be decoded (which ends the stream,
 * as for QEMU). `each` hands every record to its argument (MainChannelDecoder.eachRecord).
 */
export function judgeRecords(loader: ReferenceLoader, each: (take: (rec: MainRecord) => void) => void): void {
  try {
    each((rec) => loader.add(rec));
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    loader.streamError(e);
  }
}

/** The verdict once the main channel is read: the loader's end checks, then the side channels'. */
export function conclude(
  loader: ReferenceLoader,
  load: LoadOptions,
  open: OpenOptions,
  side: SideChannels,
  warnings: ValidationResult['warnings'],
): ValidationResult {
  const diagnostics = loader.finish();
  if (side.multifd?.length) {
    // the destination waits for multifd-channels connections, QEMU's default 2 unless told
    const count = load.multifdChannels ?? Math.max(DEFAULT_MULTIFD_CHANNELS, side.multifd.length);
    const offload = MultifdDataOffload.forChannels(side.multifd, side.threads);
    try {
      const join = new MultifdJoin(loader, count, open.pageSize, offload);
      side.multifd.forEach((ch, i) => join.checkChannel(ch, i));
      diagnostics.push(...join.finish());
    } finally {
      offload?.close();
    }
  } else if (loader.hasCapability('multifd'))
    diagnostics.push({
      rule: 'multifd/channels-not-given',
      severity: ruleSpec('multifd/channels-not-given').severity,
      offset: 0,
      path: 'multifd channels',
      message:
        'the multifd capability is on but no channel was given (--multifd FILE): the pages and device state they carry were not checked',
    });
  if (side.returnPath) diagnostics.push(...checkReturnPath(loader, side.returnPath));
  diagnostics.sort((a, b) => (a.channel ?? '').localeCompare(b.channel ?? '') || a.offset - b.offset);
  return { valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics, warnings };
}

/** A CPR state channel on its own (it travels before the main migration, on a channel of its own). */
export function validateCprChannel(ch: ChannelInput): ValidationResult {
  const diagnostics = checkCprChannel(ch);
  return { valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics, warnings: [] };
}

/** A multifd channel on its own: what can be checked without its main channel. */
export function validateMultifdChannel(ch: ChannelInput, pageSize?: number): ValidationResult {
  const join = new MultifdJoin(undefined, Number.MAX_SAFE_INTEGER, pageSize);
  join.checkChannel(ch, 0);
  const diagnostics = join.finish();
  return { valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics, warnings: [] };
}
