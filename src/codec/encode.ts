import { ConfigurationSubsections, SubsectionHeader } from '../../grammar/configuration.js';
import { writeLibvirtHeader } from '../libvirt/codec.js';
import { writeCommand } from './commands.js';
import { RamSectionEncoder } from '../ram/codec.js';
import {
  FileHeader,
  SectionFooter,
  SectionHeaderPartEnd,
  SectionHeaderStartFull,
  sectionKindByte,
  SectionType,
  VmDescriptionHeader,
} from '../../grammar/savevm.js';
import { latin1Bytes } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { writeLayout } from '../layout/write.js';
import { writeVmstateNode } from '../vmstate/codec.js';
import { writeVfioRecord } from '../vfio/codec.js';
import { writeBuiltinItem } from '../sections/builtin.js';
import type { MainRecord } from '../model/records.js';

/**
 * Writes Records back to bytes: the mirror of MainChannelDecoder. Byte-exact for every
 * record the decoder produced, because every record keeps each wire field it came from.
 */
export class MainChannelEncoder {
  private readonly ram: RamSectionEncoder;

  constructor(readonly w: StreamWriter) {
    this.ram = new RamSectionEncoder(w);
  }

  write(rec: MainRecord): void {
    const w = this.w;
    if (rec.kind !== 'mapped_ram_bitmap' && rec.kind !== 'mapped_ram_page' && rec.kind !== 'raw') this.ram.closeArea();
    switch (rec.kind) {
      case 'libvirt_header':
        writeLibvirtHeader(w, rec);
        break;
      case 'file_header':
        writeLayout(w, FileHeader, { magic: rec.magic, version: rec.version });
        break;
      case 'configuration': {
        w.u8(SectionType.QEMU_VM_CONFIGURATION);
        w.be32(rec.machineType.length);
        w.bytes(latin1Bytes(rec.machineType));
        for (const sub of rec.subsections) {
          const def = ConfigurationSubsections.find((s) => s.name === sub.name);
          if (!def) throw new Error(`unknown configuration subsection ${sub.name}`);
          writeLayout(w, SubsectionHeader, {
            marker: SectionType.QEMU_VM_SUBSECTION,
            name: sub.name,
            version: sub.version,
          });
          writeLayout(w, def.fields, sub.fields);
        }
        break;
      }
      case 'section':
        w.u8(sectionKindByte[rec.section]);
        writeLayout(
          w,
          rec.section === 'START' || rec.section === 'FULL' ? SectionHeaderStartFull : SectionHeaderPartEnd,
          { ...rec },
        );
        break;
      case 'section_footer':
        w.u8(SectionType.QEMU_VM_SECTION_FOOTER);
        writeLayout(w, SectionFooter, { sectionId: rec.sectionId });
        break;
      case 'ram':
      case 'ram_block':
      case 'mapped_ram_bitmap':
      case 'mapped_ram_page':
        this.ram.write(rec);
        break;
      case 'raw':
        w.bytes(rec.data);
        break;
      case 'section_item':
        writeBuiltinItem(w, rec);
        break;
      case 'vfio_tag':
      case 'vfio_data':
      case 'vfio_pci_config':
        writeVfioRecord(w, rec);
        break;
      case 'vmstate':
        writeVmstateNode(w, rec.node);
        break;
      case 'command':
        writeCommand(w, rec);
        break;
      case 'eof':
        w.u8(SectionType.QEMU_VM_EOF);
        break;
      case 'vmdescription':
        w.u8(SectionType.QEMU_VM_VMDESCRIPTION);
        writeLayout(w, VmDescriptionHeader, { jsonLength: rec.json.length });
        w.bytes(latin1Bytes(rec.json));
        break;
    }
  }

  /** Call after the last record: completes a mapped-ram page area that ends in holes. */
  finish(): void {
    this.ram.closeArea();
    this.w.flush();
  }
}
