/**
 * libvirt save images (`virsh save`): a 92-byte native-endian header, the domain XML (and
 * cookie, NUL-terminated, zero padded) and then the QEMU stream. Spec: libvirt-save-image.md.
 */
import type { Layout } from './layout.js';

export const LIBVIRT_SAVE_MAGIC = 'LibvirtQemudSave';
/** written while the save is still incomplete */
export const LIBVIRT_SAVE_PARTIAL_MAGIC = 'LibvirtQemudPart';
export const LIBVIRT_SAVE_HEADER_SIZE = 92;
export const LIBVIRT_SAVE_VERSION = 2;
/**
 * The header (virQEMUSaveHeader) in the byte order of the host that wrote it; a reader picks
 * the one whose `version` reads as LIBVIRT_SAVE_VERSION.
 */
function saveHeader(type: 'be32' | 'le32') {
  return [
    { name: 'magic', type: 'bytes', length: 16, doc: 'LibvirtQemudSave, or LibvirtQemudPart while incomplete' },
    { name: 'version', type },
    { name: 'dataLen', type, doc: 'domain XML and cookie, NUL-terminated, zero padded' },
    { name: 'wasRunning', type },
    { name: 'format', type, doc: 'index in LIBVIRT_SAVE_FORMATS' },
    { name: 'cookieOffset', type },
    { name: 'unused', type: 'bytes', length: 56 },
  ] as const satisfies Layout;
}
export const LibvirtSaveHeaderLE = saveHeader('le32');
export const LibvirtSaveHeaderBE = saveHeader('be32');
export const LIBVIRT_SAVE_FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'sparse'] as const;
export type LibvirtSaveFormat = (typeof LIBVIRT_SAVE_FORMATS)[number];
/** The command that decompresses a body of each compressed format (libvirt runs the same programs). */
export const LIBVIRT_BODY_DECOMPRESSORS: Partial<Record<LibvirtSaveFormat, string>> = {
  gzip: 'gzip -dc',
  bzip2: 'bzip2 -dc',
  xz: 'xz -dc',
  lzop: 'lzop -dc',
  zstd: 'zstd -dc',
};
