/**
 * libvirt save images (`virsh save`): the header read and written from its grammar layout
 * (grammar/libvirt.ts), in the byte order of the host that wrote it.
 */
import { fieldOffset } from '../../grammar/layout.js';
import {
  LIBVIRT_BODY_DECOMPRESSORS,
  LIBVIRT_SAVE_FORMATS,
  LIBVIRT_SAVE_HEADER_SIZE,
  LIBVIRT_SAVE_MAGIC,
  LIBVIRT_SAVE_PARTIAL_MAGIC,
  LIBVIRT_SAVE_VERSION,
  LibvirtSaveHeaderBE,
  LibvirtSaveHeaderLE,
} from '../../grammar/libvirt.js';
import { latin1, latin1Bytes, type StreamReader } from '../io/reader.js';

import type { StreamWriter } from '../io/sink.js';
import { compileLayout } from '../layout/parser.js';
import { writeLayout } from '../layout/write.js';
import type { LibvirtHeaderRecord } from '../model/records.js';

/**
 * What the first LIBVIRT_SAVE_HEADER_SIZE bytes say when they are a libvirt save image header
 * (else undefined): its magic, the byte order of the host that wrote it (whichever makes
 * `version` read as LIBVIRT_SAVE_VERSION), the body's format and where the body starts.
 */
export function peekLibvirtHeader(
  head: Uint8Array,
): { magic: string; littleEndian: boolean; format: number; bodyOffset: number } | undefined {
  if (head.length < LIBVIRT_SAVE_HEADER_SIZE) return undefined;
  const magic = latin1(head.subarray(0, 16));
  if (magic !== LIBVIRT_SAVE_MAGIC && magic !== LIBVIRT_SAVE_PARTIAL_MAGIC) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const littleEndian = view.getUint32(fieldOffset(LibvirtSaveHeaderLE, 'version'), true) === LIBVIRT_SAVE_VERSION;
  return {
    magic,
    littleEndian,
    format: view.getUint32(fieldOffset(LibvirtSaveHeaderLE, 'format'), littleEndian),
    bodyOffset: LIBVIRT_SAVE_HEADER_SIZE + view.getUint32(fieldOffset(LibvirtSaveHeaderLE, 'dataLen'), littleEndian),
  };
}

/**
 * The header of a libvirt save image, when the stream starts with one (else undefined, nothing
 * read); the QEMU stream follows its domain XML.
 */
export function readLibvirtHeader(
  r: StreamReader,
  warn: (message: string, offset?: number) => void,
): LibvirtHeaderRecord | undefined {
  if (!r.fill(LIBVIRT_SAVE_HEADER_SIZE)) return undefined;
  const peek = peekLibvirtHeader(r.window());
  if (!peek) return undefined;
  const { magic, littleEndian } = peek;
  const offset = r.offset;
  r.path.push('libvirt save image header');
  const h = compileLayout(littleEndian ? LibvirtSaveHeaderLE : LibvirtSaveHeaderBE).read(r, 'libvirt header');
  const { version, dataLen, wasRunning, format, cookieOffset, unused } = h;
  if (version !== LIBVIRT_SAVE_VERSION)
    throw r.error(
      'bad-version',
      `libvirt save image version ${LIBVIRT_SAVE_VERSION}`,
      `${version}`,
      offset + fieldOffset(LibvirtSaveHeaderLE, 'version'),
    );
  // a gzip body is read through inflation when the image is opened by path (app/open.ts)
  if (format !== 0 && format !== 6 && !(format === 1 && r.source.libvirtBodyInflated === true)) {
    const name = LIBVIRT_SAVE_FORMATS[format] ?? `format ${format}`;
    const tool = LIBVIRT_BODY_DECOMPRESSORS[LIBVIRT_SAVE_FORMATS[format] ?? 'raw'];
    throw r.error(
      'bad-value',
      format === 1
        ? 'a raw or sparse libvirt save image (a gzip one is read directly when opened as a file, not from a pipe)'
        : `a raw, sparse or gzip libvirt save image${tool ? ` (the body after the domain XML, from offset ${offset + LIBVIRT_SAVE_HEADER_SIZE + dataLen}, decompresses with \`${tool}\`)` : ''}`,
      `a ${name}-compressed image`,
      offset + fieldOffset(LibvirtSaveHeaderLE, 'format'),
    );
  }
  if (magic === LIBVIRT_SAVE_PARTIAL_MAGIC) warn('libvirt save image marked incomplete (LibvirtQemudPart)', offset);
  const data = r.copyBytes(dataLen, 'libvirt domain XML');
  r.path.pop();
  return {
    kind: 'libvirt_header',
    offset,
    length: r.offset - offset,
    magic,
    littleEndian,
    version,
    dataLen,
    wasRunning,
    format,
    cookieOffset,
    unused,
    data,
  };
}

export function writeLibvirtHeader(w: StreamWriter, rec: LibvirtHeaderRecord): void {
  const { version, dataLen, wasRunning, format, cookieOffset, unused } = rec;
  writeLayout(w, rec.littleEndian ? LibvirtSaveHeaderLE : LibvirtSaveHeaderBE, {
    magic: latin1Bytes(rec.magic),
    version,
    dataLen,
    wasRunning,
    format,
    cookieOffset,
    unused,
  });
  w.bytes(rec.data);
}
