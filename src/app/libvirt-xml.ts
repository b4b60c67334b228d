/**
 * The domain XML a libvirt save image carries in front of the QEMU stream (what
 * `virsh save-image-dumpxml` prints), and the migration cookie after it.
 */
import { UsageError } from '../model/errors.js';
import { openStreamFile } from './open.js';

export interface LibvirtXml {
  xml: string;
  /** the cookie libvirt keeps after the XML (cookieOffset), if any */
  cookie?: string;
}

export function libvirtXmlOf(path: string): LibvirtXml {
  const s = openStreamFile(path, {});
  try {
    const first = s.records().next();
    const rec = first.done ? undefined : first.value;
    if (rec?.kind !== 'libvirt_header')
      throw new UsageError(`${path} is not a libvirt save image (no LibvirtQemudSave header)`);
    const text = Buffer.from(rec.data).toString('utf8');
    // the XML ends at its NUL; the cookie (when cookieOffset is set) starts there and ends at the next
    const xml = text.slice(0, text.indexOf('\0') >= 0 ? text.indexOf('\0') : text.length);
    if (!rec.cookieOffset) return { xml };
    const rest = text.slice(rec.cookieOffset);
    const cookie = rest.slice(0, rest.indexOf('\0') >= 0 ? rest.indexOf('\0') : rest.length);
    return cookie ? { xml, cookie } : { xml };
  } finally {
    s.close();
  }
}
