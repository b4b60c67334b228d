/**
 * `--vfio-extract DIR`: each VFIO device's data stream as the device would have received
 * it (the DEV_DATA_STATE payloads in order), DIR/<idstr>.data, and its config state
 * (what followed DEV_CONFIG_STATE), DIR/<idstr>.config. Written as it streams by.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { makeDirs } from '../io/make-dirs.js';
import { join } from 'node:path';
import { isVfioIdstr } from '../../grammar/vfio.js';
import type { MainRecord } from '../model/records.js';
import { encodeToBytes } from '../codec/open.js';

export function deviceFileStem(idstr: string): string {
  return idstr.replace(/[/\\]/g, '_').replace(/^\.+/, '_');
}

export class VfioExtractor {
  private files = new Map<string, number>();
  private device: string | undefined;
  readonly bytes = new Map<string, number>();

  constructor(private readonly dir: string) {
    makeDirs(dir);
  }

  private fd(name: string): number {
    let fd = this.files.get(name);
    if (fd === undefined) {
      fd = openSync(join(this.dir, name), 'w');
      this.files.set(name, fd);
    }
    return fd;
  }

  /** Data for one device (also used for buffers reassembled from multifd channels). */
  write(idstr: string, data: Uint8Array): void {
    writeSync(this.fd(`${deviceFileStem(idstr)}.data`), data);
    this.bytes.set(idstr, (this.bytes.get(idstr) ?? 0) + data.length);
  }

  writeConfig(idstr: string, data: Uint8Array): void {
    writeSync(this.fd(`${deviceFileStem(idstr)}.config`), data);
  }

  add(rec: MainRecord): void {
    if (rec.kind === 'section') this.device = isVfioIdstr(rec.idstr) ? rec.idstr : undefined;
    else if (!this.device) return;
    else if (rec.kind === 'vfio_tag' && rec.tag === 'DEV_DATA_STATE') this.fd(`${deviceFileStem(this.device)}.data`);
    else if (rec.kind === 'vfio_data') this.write(this.device, rec.data);
    else if (rec.kind === 'vfio_pci_config') this.writeConfig(this.device, encodeToBytes([rec]));
  }

  close(): void {
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
  }
}
