import { MULTIFD_MAGIC } from '../../grammar/multifd.js';
import { QEMU_VM_FILE_MAGIC } from '../../grammar/savevm.js';
import type { ByteSource } from '../io/source.js';

export type ChannelKind = 'main' | 'multifd' | 'unknown';

/** What kind of channel a capture is, from its first four bytes (as QEMU's destination decides). */
export function detectChannelKind(src: ByteSource): ChannelKind {
  if (!src.seekable) return 'main'; // a pipe cannot be peeked without consuming it
  const b = new Uint8Array(4);
  if (src.read(b, 0, 4, 0) < 4) return 'unknown';
  const magic = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  return magic === QEMU_VM_FILE_MAGIC ? 'main' : magic === MULTIFD_MAGIC ? 'multifd' : 'unknown';
}
