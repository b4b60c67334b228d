/**
 * The domain XML a libvirt save image carries in front of the QEMU stream (what
 * `virsh save-image-dumpxml` prints), and the migration cookie after it.
 */
import { UsageError } from '../model/errors.js';
import { readLibvirtHeader } from '../libvirt/codec.js';
import { StreamReader } from '../io/reader.js';
import { openSource } from './open.js';

export interface LibvirtXml {
  xml: string;
  /** the cookie libvirt keeps after the XML (cookieOffset), if any */
  cookie?: string;
}

/** The text of `data` from `at` to its NUL (or its end). */
function cString(data: Uint8Array, at: number): string {
  const end = data.indexOf(0, at);
  return Buffer.from(data.subarray(at, end < 0 ? data.length : end)).toString('utf8');
}

export function libvirtXmlOf(path: string): LibvirtXml {
  const src = openSource(path);
  try {
    // only the header and the XML are read: not the stream after them
    const rec = readLibvirtHeader(new StreamReader(src), () => undefined);
    if (!rec) throw new UsageError(`${path} is not a libvirt save image (no LibvirtQemudSave header)`);
    const xml = cString(rec.data, 0);
    const cookie = rec.cookieOffset ? cString(rec.data, rec.cookieOffset) : '';
    return cookie ? { xml, cookie } : { xml };
  } finally {
    src.close();
  }
}
