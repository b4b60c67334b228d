/**
 * The kinds of byte stream a migration has: the main channel, multifd channels, the return
 * path and the CPR state channel. One place that picks the decoder and encoder for each.
 */
import { QEMU_CPR_FILE_MAGIC } from '../../grammar/cpr.js';
import { MULTIFD_MAGIC } from '../../grammar/multifd.js';
import { decodeCprChannel, encodeCprRecord } from '../cpr/codec.js';
import type { CprRecord } from '../model/cpr-records.js';
import { be32At } from '../io/bytes.js';
import { QEMU_VM_FILE_MAGIC } from '../../grammar/savevm.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import type { ByteSource } from '../io/source.js';
import { decodeMultifdChannel, encodeMultifdRecord } from '../multifd/codec.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { decodeReturnPath, encodeReturnPathRecord } from '../returnpath/codec.js';
import type { ReturnPathRecord } from '../model/returnpath-records.js';
import { isCprRecord, isMultifdRecord, type AnyRecord, type ChannelKind } from '../model/channel-records.js';
import { MainChannelEncoder } from './encode.js';

export type { AnyRecord, ChannelKind };

/** What a capture is, from its first bytes as QEMU's destination decides: QEVM, the multifd magic or QCPR. */
export function detectChannelKind(src: ByteSource): ChannelKind | undefined {
  if (!src.seekable) return undefined;
  const b = new Uint8Array(4);
  if (src.read(b, 0, 4, 0) < 4) return undefined;
  const magic = be32At(b, 0);
  if (magic === QEMU_VM_FILE_MAGIC) return 'main';
  if (magic === MULTIFD_MAGIC) return 'multifd';
  return magic === QEMU_CPR_FILE_MAGIC ? 'cpr' : undefined;
}

/** The requested kind, or the detected one; a pipe or an unrecognized start is read as the main channel. */
export function resolveChannelKind(src: ByteSource, requested: ChannelKind | 'auto' = 'auto'): ChannelKind {
  return requested === 'auto' ? (detectChannelKind(src) ?? 'main') : requested;
}

export function decodeSideChannel(kind: 'multifd', r: StreamReader, pageSize?: number): Generator<MultifdRecord>;
export function decodeSideChannel(kind: 'return-path', r: StreamReader, pageSize?: number): Generator<ReturnPathRecord>;
export function decodeSideChannel(kind: 'cpr', r: StreamReader, pageSize?: number): Generator<CprRecord>;
export function decodeSideChannel(
  kind: 'multifd' | 'return-path' | 'cpr',
  r: StreamReader,
  pageSize?: number,
): Generator<MultifdRecord | ReturnPathRecord | CprRecord>;
export function decodeSideChannel(
  kind: 'multifd' | 'return-path' | 'cpr',
  r: StreamReader,
  pageSize?: number,
): Generator<MultifdRecord | ReturnPathRecord | CprRecord> {
  if (kind === 'cpr') return decodeCprChannel(r);
  return kind === 'multifd' ? decodeMultifdChannel(r, pageSize) : decodeReturnPath(r);
}

/** An encoder for records of any channel kind. */
export class ChannelEncoder {
  private main: MainChannelEncoder;
  constructor(readonly w: StreamWriter) {
    this.main = new MainChannelEncoder(w);
  }
  write(rec: AnyRecord): void {
    // a main channel's pages first: most records of most streams
    if (rec.kind === 'ram') this.main.write(rec);
    else if (rec.kind === 'rp_message') encodeReturnPathRecord(this.w, rec);
    else if (isCprRecord(rec)) encodeCprRecord(this.w, rec);
    else if (isMultifdRecord(rec)) encodeMultifdRecord(this.w, rec);
    else this.main.write(rec);
  }
  finish(): void {
    this.main.finish();
  }
}
