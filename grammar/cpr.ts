/**
 * The CPR state channel (QEMU 10.0+, migration modes cpr-transfer and cpr-exec): what the
 * source sends on its own channel before the main migration, so that the new QEMU can take
 * over file descriptors (guest RAM memfds, vhost, VFIO container and device fds) by name.
 *
 * Wire format, from migration/cpr.c (cpr_state_save / cpr_state_load) and the VMState it
 * saves (vmstate_cpr_state, vmstate_cpr_fd; QLIST framing from vmstate-types.c put_qlist):
 *   be32 QEMU_CPR_FILE_MAGIC, be32 QEMU_CPR_FILE_VERSION,
 *   then for each saved fd, most recently saved first (cpr_save_fd inserts at the list head):
 *     u8 1 (another element follows; the loader takes any non-zero byte),
 *     be32 namelen, namelen bytes of name (strlen + 1: the NUL is sent), be32 id (int32),
 *     one byte (' ') that carries the descriptor as SCM_RIGHTS ancillary data (VMSTATE_FD,
 *     qemu_file_put_fd: a dummy byte, so the reader has something to read with the fd);
 *   u8 0 (the end of the list). CprState has no subsections: nothing follows.
 * A capture of the bytes (a file, a relay) holds the dummy bytes but not the descriptors.
 */
import type { Layout } from './layout.js';

/** "QCPR" */
export const QEMU_CPR_FILE_MAGIC = 0x51435052;
export const QEMU_CPR_FILE_VERSION = 1;
/** The byte qemu_file_put_fd sends with each descriptor. */
export const CPR_FD_DUMMY_BYTE = 0x20;

export const CprHeader = [
  { name: 'magic', type: 'be32', doc: 'QEMU_CPR_FILE_MAGIC' },
  { name: 'version', type: 'be32', doc: 'QEMU_CPR_FILE_VERSION' },
] as const satisfies Layout;

/** One element of CprState's fds list after its "more" byte: vmstate_cpr_fd's fields. */
export const CprFd = [
  { name: 'namelen', type: 'be32', doc: 'VMSTATE_UINT32(namelen)' },
  { name: 'name', type: 'bytes', length: 'namelen', doc: 'VMSTATE_VBUFFER_ALLOC_UINT32(name), NUL included' },
  { name: 'id', type: 'be32', doc: 'VMSTATE_INT32(id)' },
  { name: 'fdByte', type: 'u8', doc: "VMSTATE_FD: the dummy byte ' ' the descriptor travels with" },
] as const satisfies Layout;
