/**
 * VFIO devices in the machine model, both directions. A VFIO device's migration data is
 * opaque device state: the model keeps what the device handed QEMU in each phase (its tags,
 * its data chunks in a side file, its PCI config state field by field); the engine derives
 * the wire form of each (DEV_DATA_STATE with its be64 size, the tag values, the config
 * layout) as hw/vfio/migration.c writes it (spec vfio-and-multifd.md §4).
 */
import { VfioTag, type VfioTagName } from '../../grammar/vfio.js';
import type { MainRecord, VfioPciConfigRecord } from '../model/records.js';
import { ModelError } from './engine-errors.js';
import type { ModelFiles } from './side-files.js';

/** One item of a VFIO section: a tag, a chunk of device data (DEV_DATA_STATE), or the PCI config state. */
export type VfioItem =
  | { tag: Exclude<VfioTagName, 'DEV_DATA_STATE'> }
  /** [offset, length] in the model's deviceDataFile */
  | { data: [number, number] }
  | { config: VfioConfigModel };

export interface VfioConfigModel {
  pciVersion: number;
  /** config space, hex (256 or 4096 bytes) */
  config: string;
  irqState: number[];
  msixTable?: string;
  msixPba?: string;
  display?: { name: string; version: number; ramfb: string };
}

/** An iterable device other than RAM (VFIO): what each phase's section carries; null: no section that iteration. */
export interface IterableDeviceModel {
  idstr: string;
  instanceId: number;
  sectionId: number;
  version: number;
  /** the START section's items (save_setup) */
  setup?: VfioItem[];
  /** one entry per RAM iteration: the PART section's items, or null */
  iterations: (VfioItem[] | null)[];
  /** the END section's items (save_complete) */
  complete?: VfioItem[];
}

const r0 = { offset: 0, length: 0 };
const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const bytesOf = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

/** The records of one VFIO section's items. */
export function* vfioRecords(items: readonly VfioItem[], files: ModelFiles, dataFile?: string): Generator<MainRecord> {
  for (const it of items) {
    if ('tag' in it) {
      if (!(it.tag in VfioTag)) throw new ModelError(`${it.tag} is not a VFIO_MIG_FLAG tag`);
      yield { kind: 'vfio_tag', ...r0, tag: it.tag, value: VfioTag[it.tag] };
    } else if ('data' in it) {
      if (!dataFile) throw new ModelError("VFIO device data needs the model's deviceDataFile");
      const [at, size] = it.data;
      yield { kind: 'vfio_tag', ...r0, tag: 'DEV_DATA_STATE', value: VfioTag.DEV_DATA_STATE, size };
      // streamed in chunks: a device state can be of any size
      for (let done = 0; done < size; done += 1 << 20) {
        const n = Math.min(1 << 20, size - done);
        yield { kind: 'vfio_data', ...r0, data: files.read(dataFile, at + done, n) };
      }
    } else {
      const c = it.config;
      const rec: VfioPciConfigRecord = {
        kind: 'vfio_pci_config',
        ...r0,
        pciVersion: c.pciVersion,
        config: bytesOf(c.config),
        irqState: [...c.irqState],
      };
      if (c.msixTable !== undefined) rec.msixTable = bytesOf(c.msixTable);
      if (c.msixPba !== undefined) rec.msixPba = bytesOf(c.msixPba);
      if (c.display)
        rec.display = { name: c.display.name, version: c.display.version, ramfb: bytesOf(c.display.ramfb) };
      yield rec;
    }
  }
}

/** Collects a VFIO section's records into items; data goes to the side file through `append`. */
export class VfioItemReader {
  readonly items: VfioItem[] = [];
  private open: { item: { data: [number, number] }; left: number } | undefined;

  constructor(private readonly append: (data: Uint8Array) => number) {}

  add(rec: MainRecord): void {
    if (rec.kind === 'vfio_tag') {
      this.closeData();
      if (rec.tag === null) throw new ModelError(`an unknown VFIO tag 0x${rec.value.toString(16)}`);
      if (rec.tag === 'DEV_DATA_STATE') {
        const item: { data: [number, number] } = { data: [-1, rec.size ?? 0] };
        this.items.push(item);
        this.open = { item, left: rec.size ?? 0 };
      } else this.items.push({ tag: rec.tag });
    } else if (rec.kind === 'vfio_data') {
      if (!this.open) throw new ModelError('VFIO device data outside DEV_DATA_STATE');
      const at = this.append(rec.data);
      if (this.open.item.data[0] < 0) this.open.item.data[0] = at;
      this.open.left -= rec.data.length;
    } else if (rec.kind === 'vfio_pci_config') {
      this.closeData();
      const config: VfioConfigModel = {
        pciVersion: rec.pciVersion,
        config: hexOf(rec.config),
        irqState: [...rec.irqState],
      };
      if (rec.msixTable) config.msixTable = hexOf(rec.msixTable);
      if (rec.msixPba) config.msixPba = hexOf(rec.msixPba);
      if (rec.display)
        config.display = { name: rec.display.name, version: rec.display.version, ramfb: hexOf(rec.display.ramfb) };
      this.items.push({ config });
    } else throw new ModelError(`${rec.kind} records in a VFIO section`);
  }

  /** an empty DEV_DATA_STATE has no bytes: its offset is that of nothing, 0 */
  private closeData(): void {
    if (this.open && this.open.item.data[0] < 0) this.open.item.data[0] = 0;
    this.open = undefined;
  }

  finish(): VfioItem[] {
    this.closeData();
    return this.items;
  }
}
