import { DEFAULT_TARGET_PAGE_SIZE } from '../../grammar/ram.js';
import {
  MULTIFD_FLAG_COMPRESSION_MASK,
  MULTIFD_PACKET_BYTES_OF_PAGES,
  MultifdDeviceStateBody,
  MultifdFlag,
  MultifdInit,
  MultifdPacketHeader,
  MultifdRamPacketBody,
} from '../../grammar/multifd.js';
import { hex } from '../model/errors.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { compileLayout } from '../layout/parser.js';
import { writeLayout } from '../layout/write.js';
import type { MultifdRecord } from '../model/multifd-records.js';
import { isVfioIdstr, VfioDeviceStatePacketHeader } from '../../grammar/vfio.js';

/** A NUL-padded C string field (idstr[256]) as latin1. */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.subarray(0, end < 0 ? b.length : end)).toString('latin1');
}

/** Largest payload we accept after one packet (a device-state buffer is chunked by the sender). */
const MAX_PAYLOAD = 64 << 20;

/** A packet's payload is read in pieces of at most this many bytes (a multifd_payload record each). */
export const PAYLOAD_PIECE = 1 << 20;

/**
 * A reader's capacity for a multifd channel: its largest read is a payload piece (the page
 * offsets of a packet are 8 KiB at most), and a quarter of the default (4 MiB) keeps the
 * memory of a set's readers down (validate's RSS on the bench's 4-channel zlib set: 109-120 ->
 * 100-109 MiB).
 */
export const MULTIFD_READER_CAPACITY = 2 * PAYLOAD_PIECE;

/**
 * Decodes one multifd channel: MultiFDInit, then packets and their payloads. The fixed
 * parts are parsed with binary-parser decoders compiled from grammar/multifd.ts.
 */
export function* decodeMultifdChannel(r: StreamReader, pageSize = DEFAULT_TARGET_PAGE_SIZE): Generator<MultifdRecord> {
  const init = compileLayout(MultifdInit);
  const head = compileLayout(MultifdPacketHeader);
  const ram = compileLayout(MultifdRamPacketBody);
  const dev = compileLayout(MultifdDeviceStateBody);
  const vfioHead = compileLayout(VfioDeviceStatePacketHeader);
  const offsetsBytes = (MULTIFD_PACKET_BYTES_OF_PAGES / pageSize) * 8;
  r.path.push('MultiFDInit');
  const fields = init.read(r, 'MultiFDInit');
  r.path.pop();
  yield { kind: 'multifd_init', offset: 0, length: init.size, fields };
  while (!r.atEnd()) {
    const offset = r.offset;
    r.path.push(`multifd packet @${hex(offset)}`);
    const header = head.read(r, 'packet');
    const flags = header.flags;
    let payload: number;
    if (flags & MultifdFlag.MULTIFD_FLAG_DEVICE_STATE) {
      const body = dev.read(r, 'device state packet');
      payload = body.nextPacketSize;
      yield { kind: 'multifd_device_state', offset, length: r.offset - offset, header, fields: body };
      if (isVfioIdstr(cString(body.idstr)) && payload >= vfioHead.size) {
        const at = r.offset;
        const h = vfioHead.read(r, 'VFIO device state packet header');
        yield {
          kind: 'multifd_vfio_buffer',
          offset: at,
          length: vfioHead.size,
          version: h.version,
          idx: h.idx,
          flags: h.flags,
        };
        payload -= vfioHead.size;
      }
    } else {
      const body = ram.read(r, 'RAM packet');
      const offsets = r.copyBytes(offsetsBytes, 'page offsets');
      const normal = body.normalPages;
      if (normal > MULTIFD_PACKET_BYTES_OF_PAGES / pageSize) {
        throw r.error(
          'bad-value',
          `at most ${MULTIFD_PACKET_BYTES_OF_PAGES / pageSize} normal pages`,
          `${normal}`,
          offset + 16,
        );
      }
      // nocomp: the pages themselves (7.2 leaves stale next_packet_size in empty packets);
      // compressed: next_packet_size bytes of the channel's compressed stream
      payload = flags & MULTIFD_FLAG_COMPRESSION_MASK ? body.nextPacketSize : normal * pageSize;
      yield { kind: 'multifd_packet', offset, length: r.offset - offset, header, fields: body, offsets };
    }
    if (payload > MAX_PAYLOAD)
      throw r.error('limit', `a packet payload of at most ${MAX_PAYLOAD} bytes`, `${payload}`, offset);
    let left = payload;
    while (left > 0) {
      const at = r.offset;
      const n = Math.min(left, PAYLOAD_PIECE);
      yield { kind: 'multifd_payload', offset: at, length: n, data: r.bytes(n, 'packet payload') };
      left -= n;
    }
    r.path.pop();
  }
}

export function encodeMultifdRecord(w: StreamWriter, rec: MultifdRecord): void {
  switch (rec.kind) {
    case 'multifd_init':
      writeLayout(w, MultifdInit, rec.fields);
      break;
    case 'multifd_packet':
      writeLayout(w, MultifdPacketHeader, rec.header);
      writeLayout(w, MultifdRamPacketBody, rec.fields);
      w.bytes(rec.offsets);
      break;
    case 'multifd_device_state':
      writeLayout(w, MultifdPacketHeader, rec.header);
      writeLayout(w, MultifdDeviceStateBody, rec.fields);
      break;
    case 'multifd_vfio_buffer':
      writeLayout(w, VfioDeviceStatePacketHeader, { version: rec.version, idx: rec.idx, flags: rec.flags });
      break;
    case 'multifd_payload':
      w.bytes(rec.data);
      break;
  }
}
