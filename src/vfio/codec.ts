import { RAMFB_CFG_SIZE, VFIO_DISPLAY_SUBSECTION, vfioTagByValue } from '../../grammar/vfio.js';
import { SubsectionHeader } from '../../grammar/configuration.js';
import { readLayout } from '../layout/read.js';
import { hex } from '../model/errors.js';
import type { StreamReader } from '../io/reader.js';
import type { MainRecord, VfioDataRecord, VfioPciConfigRecord, VfioTagRecord } from '../model/records.js';
import type { StreamWriter } from '../io/sink.js';
import { writeLayout } from '../layout/write.js';
import { SectionType } from '../../grammar/savevm.js';
import { fitPciConfig } from './pci-config.js';

/** Upper bound of a VFIOPCIDevice state: version, 4 KiB config, irq state, 2048 MSI-X vectors, subsection. */
const MAX_PCI_STATE = 4 + 4096 + 16 + 2048 * 16 + 256 + 2 + 255 + 4 + 28 + 8;

export interface VfioDecodeContext {
  copy: boolean;
  warn(message: string, offset?: number): void;
  /** the vmdescription's `size` of this (FULL) section, for the raw fallback */
  describedSize?: number;
}

function readTag(r: StreamReader): VfioTagRecord {
  const offset = r.offset;
  const value = r.be64('VFIO_MIG_FLAG tag');
  return { kind: 'vfio_tag', offset, length: 8, tag: vfioTagByValue.get(value) ?? null, value };
}

/**
 * A VFIO section payload, read the way QEMU's vfio_load_state walks it: tags until
 * END_OF_STATE; SETUP_STATE and CONFIG_STATE are each followed by exactly one more tag;
 * INIT_DATA_SENT and CONFIG_LOAD_READY end the payload at once. Whether each tag is
 * allowed is the reference loader's business (src/loader/load.ts), not the decoder's.
 */
export function* readVfioPayload(r: StreamReader, ctx: VfioDecodeContext): Generator<MainRecord> {
  for (;;) {
    const t = readTag(r);
    switch (t.tag) {
      case null: // QEMU stops at an unknown tag ("Unknown tag"); so does the payload
      case 'END_OF_STATE':
      case 'DEV_INIT_DATA_SENT':
      case 'DEV_CONFIG_LOAD_READY':
        yield t;
        return;
      case 'DEV_SETUP_STATE':
        yield t;
        yield readTag(r);
        return;
      case 'DEV_DATA_STATE': {
        const size = r.be64Number('VFIO device data size');
        t.size = size;
        t.length = 16;
        yield t;
        let left = size;
        while (left > 0) {
          const at = r.offset;
          if (!r.fill(1)) throw r.error('truncated', `${left} more bytes of VFIO device data`, 'end of stream');
          const n = Math.min(left, r.available, 1 << 20);
          yield {
            kind: 'vfio_data',
            offset: at,
            length: n,
            data: ctx.copy ? r.copyBytes(n, 'VFIO device data') : r.bytes(n, 'VFIO device data'),
          };
          left -= n;
        }
        break;
      }
      case 'DEV_CONFIG_STATE':
        yield t;
        yield* readPciConfig(r, ctx);
        yield readTag(r);
        return;
    }
  }
}

function* readPciConfig(r: StreamReader, ctx: VfioDecodeContext): Generator<MainRecord> {
  const offset = r.offset;
  r.fill(Math.min(r.capacity, MAX_PCI_STATE));
  const win = r.window().subarray(0, MAX_PCI_STATE);
  // the layouts tried look anywhere in the window; a window cut short by the stream's end depends on it
  r.noteLookahead(win.length < MAX_PCI_STATE ? Infinity : offset + MAX_PCI_STATE);
  const fit = fitPciConfig(win);
  if (!fit) {
    // The layout does not fit: keep the bytes, delimited by the vmdescription's size.
    const n = ctx.describedSize !== undefined ? ctx.describedSize - 16 : undefined;
    if (n === undefined || n < 0) {
      throw r.error(
        'bad-value',
        'a VFIOPCIDevice state (256- or 4096-byte config) followed by VFIO_MIG_FLAG_END_OF_STATE',
        'no layout that fits, and no vmdescription size to delimit it',
      );
    }
    ctx.warn(`VFIOPCIDevice state does not fit the known layout; ${n} bytes kept raw (vmdescription size)`, offset);
    yield {
      kind: 'raw',
      offset,
      length: n,
      reason: 'VFIO PCI config state (layout not understood)',
      data: r.copyBytes(n, 'VFIO config state'),
    };
    return;
  }
  r.path.push(`VFIOPCIDevice @${hex(offset)}`);
  const pciVersion = r.be32('PCIDevice version_id');
  const config = r.copyBytes(fit.configSize, 'PCI config space');
  const irqState = [r.be32('irq_state'), r.be32('irq_state'), r.be32('irq_state'), r.be32('irq_state')];
  const rec: MainRecord = { kind: 'vfio_pci_config', offset, length: fit.total, pciVersion, config, irqState };
  if (fit.vectors) {
    rec.msixTable = r.copyBytes(fit.vectors * 16, 'MSI-X table');
    rec.msixPba = r.copyBytes(Math.ceil(fit.vectors / 8), 'MSI-X PBA');
  }
  if (fit.displayLength) {
    const h = readLayout(r, SubsectionHeader, 'VFIOPCIDevice subsection');
    const name = h.name;
    if (name !== VFIO_DISPLAY_SUBSECTION)
      ctx.warn(`unexpected VFIOPCIDevice subsection ${JSON.stringify(name)}`, offset);
    rec.display = { name, version: h.version, ramfb: r.copyBytes(RAMFB_CFG_SIZE, 'RAMFBCfg') };
  }
  r.path.pop();
  yield rec;
}

// ---- encode: the mirror of readVfioPayload ----

export type VfioRecord = VfioTagRecord | VfioDataRecord | VfioPciConfigRecord;

export function writeVfioRecord(w: StreamWriter, rec: VfioRecord): void {
  switch (rec.kind) {
    case 'vfio_tag':
      w.be64(rec.value);
      if (rec.tag === 'DEV_DATA_STATE') w.be64Number(rec.size ?? 0);
      break;
    case 'vfio_data':
      w.bytes(rec.data);
      break;
    case 'vfio_pci_config':
      w.be32(rec.pciVersion);
      w.bytes(rec.config);
      for (const v of rec.irqState) w.be32(v);
      if (rec.msixTable) w.bytes(rec.msixTable);
      if (rec.msixPba) w.bytes(rec.msixPba);
      if (rec.display) {
        writeLayout(w, SubsectionHeader, {
          marker: SectionType.QEMU_VM_SUBSECTION,
          name: rec.display.name,
          version: rec.display.version,
        });
        w.bytes(rec.display.ramfb);
      }
      break;
  }
}
