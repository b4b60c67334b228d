/**
 * The three kinds of byte stream a migration has: the main channel, multifd channels and
 * the return path. One place that picks the decoder and encoder for each.
 */
import { MULTIFD_MAGIC } from '../../grammar/multifd.js';
import { be32At } from '../io/bytes.js';
import { QEMU_VM_FILE_MAGIC } from '../../grammar/savevm.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import type { ByteSource } from '../io/source.js';
import { decodeMultifdChannel, encodeMultifdRecord } from '../multifd/codec.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { decodeReturnPath, encodeReturnPathRecord } from '../returnpath/codec.js';
import type { ReturnPathRecord } from '../model/returnpath-records.js';
import { isMultifdRecord, type AnyRecord, type ChannelKind } from '../model/channel-records.js';
import { MainChannelEncoder } from './encode.js';

export type { AnyRecord, ChannelKind };

/** What a capture is, from its first bytes as QEMU's destination decides: QEVM or the multifd magic. */
export function detectChannelKind(src: ByteSource): ChannelKind | undefined {
  if (!src.seekable) return undefined;
  const b = new Uint8Array(4);
  if (src.read(b, 0, 4, 0) < 4) return undefined;
  const magic = be32At(b, 0);
  return magic === QEMU_VM_FILE_MAGIC ? 'main' : magic === MULTIFD_MAGIC ? 'multifd' : undefined;
}

/** The requested kind, or the detected one; a pipe or an unrecognized start is read as the main channel. */
export function resolveChannelKind(src: ByteSource, requested: ChannelKind | 'auto' = 'auto'): ChannelKind {
  return requested === 'auto' ? (detectChannelKind(src) ?? 'main') : requested;
}

export function decodeSideChannel(kind: 'multifd', r: StreamReader, pageSize?: number): Generator<MultifdRecord>;
export function decodeSideChannel(kind: 'return-path', r: StreamReader, pageSize?: number): Generator<ReturnPathRecord>;
export function decodeSideChannel(
  kind: 'multifd' | 'return-path',
  r: StreamReader,
  pageSize?: number,
): Generator<MultifdRecord | ReturnPathRecord>;
export function decodeSideChannel(
  kind: 'multifd' | 'return-path',
  r: StreamReader,
  pageSize?: number,
): Generator<MultifdRecord | ReturnPathRecord> {
  return kind === 'multifd' ? decodeMultifdChannel(r, pageSize) : decodeReturnPath(r);
}

/** An encoder for records of any channel kind. */
export class ChannelEncoder {
  private main: MainChannelEncoder;
  constructor(readonly w: StreamWriter) {
    this.main = new MainChannelEncoder(w);
  }
  write(rec: AnyRecord): void {
    if (rec.kind === 'rp_message') encodeReturnPathRecord(this.w, rec);
    else if (isMultifdRecord(rec)) encodeMultifdRecord(this.w, rec);
    else this.main.write(rec);
  }
  finish(): void {
    this.main.finish();
  }
}
