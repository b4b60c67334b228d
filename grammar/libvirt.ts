/**
 * libvirt save images (`virsh save`): a 92-byte native-endian header, the domain XML (and
 * cookie, NUL-terminated, zero padded) and then the QEMU stream. Spec: libvirt-save-image.md.
 */
export const LIBVIRT_SAVE_MAGIC = 'LibvirtQemudSave';
/** written while the save is still incomplete */
export const LIBVIRT_SAVE_PARTIAL_MAGIC = 'LibvirtQemudPart';
export const LIBVIRT_SAVE_HEADER_SIZE = 92;
export const LIBVIRT_SAVE_VERSION = 2;
/** the header's five 32-bit fields after the magic, in order */
export const LIBVIRT_SAVE_FIELDS = ['version', 'dataLen', 'wasRunning', 'format', 'cookieOffset'] as const;
export const LIBVIRT_SAVE_FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'sparse'] as const;
