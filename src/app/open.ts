/**
 * Opening what a user names: a stream file (or `-`), a --vmsd description. Failures are
 * UsageErrors in words ("cannot open x.mig: no such file or directory"), not errno codes.
 */
import { readFileSync } from 'node:fs';
import { openMainStream, type OpenedStream, type OpenOptions } from '../codec/open.js';
import { UsageError } from '../model/errors.js';
import { FileSource, readAt, type ByteSource } from '../io/source.js';
import { InflateSource } from '../io/inflate-source.js';
import { GZIP_MAGIC, inputKindOf } from '../../grammar/input-kinds.js';
import { MIG_RP_MSG_MAX_LEN, rpMessageByValue } from '../../grammar/savevm.js';
import { LIBVIRT_SAVE_FORMATS, LIBVIRT_SAVE_HEADER_SIZE } from '../../grammar/libvirt.js';
import { peekLibvirtHeader } from '../libvirt/codec.js';
import { be16At, be32At } from '../io/bytes.js';
import { QCOW2_MAGIC } from '../../grammar/qcow2.js';
import { Qcow2Image } from '../qcow2/image.js';
import { ioErrorWords } from '../io/io-words.js';
import { parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { observed } from './progress.js';

/** What the stream alone does not say, given by the user. */
export interface StreamRequest {
  /** a vmdescription JSON file to decode device sections with, instead of the stream's own */
  vmsd?: string;
  /** TARGET_PAGE_SIZE when the stream does not carry target-page-bits */
  pageSize?: number;
  /** destination capabilities (QEMU names) */
  capability?: string[];
  /** keep every byte (IR): read mapped-ram holes too */
  exact?: boolean;
  /** a qcow2 image: the internal snapshot (id or name) whose VM state to read; default the newest */
  snapshot?: string;
}

/**
 * Open what the user named. A gzip file is read through inflation, and so is the gzip body
 * of a libvirt save image (its header and domain XML come first, as they are); a file of
 * another known kind (zstd, xz, qcow2, ...) is refused here with what handles it.
 */
export function openSource(path: string, snapshot?: string): ByteSource {
  return observed(openUnobserved(path, snapshot));
}

/** The VM state of a qcow2 image's internal snapshot (`snapshot`: its id or name; default the newest). */
function openQcow2Snapshot(path: string, snapshot: string | undefined): ByteSource {
  const image = new Qcow2Image(path);
  const s = image.snapshot(snapshot);
  if (!s || s.vmStateSize === 0) {
    image.close();
    const listed = image.snapshots.map((x) => `${x.id} "${x.name}"`).join(', ') || 'none';
    throw new UsageError(
      snapshot === undefined
        ? `${path} is a qcow2 image without a snapshot that holds VM state (snapshots: ${listed})`
        : `${path}: no snapshot ${snapshot} with VM state (snapshots: ${listed}; migstream snapshots ${path} lists them)`,
    );
  }
  const vmState = image.vmState(s);
  return {
    name: vmState.name,
    size: vmState.size,
    seekable: true,
    read: (into, off, len, at) => vmState.read(into, off, len, at),
    close: () => image.close(),
  };
}

/** A libvirt save image whose body (after the header and domain XML) is gzip: where the body starts and the bytes before it. */
function libvirtGzipBody(src: ByteSource): { offset: number; prefix: Uint8Array } | undefined {
  const head = new Uint8Array(LIBVIRT_SAVE_HEADER_SIZE);
  if (readAt(src, head, head.length, 0) < head.length) return undefined;
  const h = peekLibvirtHeader(head);
  if (!h || LIBVIRT_SAVE_FORMATS[h.format] !== 'gzip') return undefined;
  const offset = h.bodyOffset;
  // the prefix is held in memory: a domain XML is kilobytes; a lying dataLen is not followed
  if (src.size === undefined || offset > src.size || offset > MAX_LIBVIRT_PREFIX) return undefined;
  const prefix = new Uint8Array(offset);
  if (readAt(src, prefix, offset, 0) < offset) return undefined;
  return { offset, prefix };
}

/** Far larger than any domain XML with its cookie and padding (kilobytes). */
const MAX_LIBVIRT_PREFIX = 16 << 20;

function openUnobserved(path: string, snapshot?: string): ByteSource {
  let src: FileSource;
  try {
    src = new FileSource(path);
  } catch (e) {
    throw new UsageError(`cannot open ${path}: ${ioErrorWords(e as NodeJS.ErrnoException)}`);
  }
  if (!src.seekable) return src;
  const head = new Uint8Array(8);
  const n = readAt(src, head, head.length, 0);
  if (n >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) {
    src.close();
    return new InflateSource(path);
  }
  const body = libvirtGzipBody(src);
  if (body) {
    src.close();
    return new InflateSource(path, body);
  }
  if (n >= 4 && be32At(head, 0) === QCOW2_MAGIC) {
    src.close();
    return openQcow2Snapshot(path, snapshot);
  }
  if (snapshot !== undefined) {
    src.close();
    throw new UsageError(`--snapshot ${snapshot}: ${path} is not a qcow2 image`);
  }
  const kind = inputKindOf(head.subarray(0, n));
  if (kind) {
    src.close();
    throw new UsageError(`${path} is ${kind.name}: ${kind.hint}`);
  }
  return src;
}

/**
 * A main stream never starts like a return-path message (be16 type of MIG_RP_MSG, be16 len
 * that fits it): such a file is the return path, captured from the destination's side.
 */
function looksLikeReturnPath(src: ByteSource): boolean {
  if (!src.seekable) return false;
  const head = new Uint8Array(4);
  if (readAt(src, head, 4, 0) < 4) return false;
  const msg = rpMessageByValue.get(be16At(head, 0));
  const len = be16At(head, 2);
  return msg !== undefined && (msg.len === undefined ? len <= MIG_RP_MSG_MAX_LEN : len === msg.len);
}

/** Open a main stream for reading what it says (not for re-encoding it). */
export function openStreamFile(path: string, o: StreamRequest, more: Pick<OpenOptions, 'copyData'> = {}): OpenedStream {
  const vmdesc = readVmsdFile(o.vmsd);
  const src = openSource(path, o.snapshot);
  if (looksLikeReturnPath(src)) {
    src.close();
    throw new UsageError(
      `${path} starts like a return-path capture, not a main stream: read it with dump --kind return-path (or roundtrip --kind return-path)`,
    );
  }
  return openMainStream(src, {
    vmdesc,
    pageSize: o.pageSize,
    capabilities: o.capability ?? [],
    skipAbsentMappedRamPages: !o.exact,
    ...more,
  });
}

/** The vmdescription given with --vmsd, if any. */
export function readVmsdFile(path: string | undefined): VmDescription | undefined {
  if (!path) return undefined;
  try {
    return parseVmDescription(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot use --vmsd ${path}: ${(e as Error).message}`);
  }
}
