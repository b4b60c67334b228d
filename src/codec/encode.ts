import { ConfigurationSubsections, SubsectionHeader } from '../../grammar/configuration.js';
import { writeLibvirtHeader } from '../libvirt/codec.js';
import { MappedRamHeader, RamBlockEntry, RamBlockMrAddr, RamBlockPageSize, RamCompressHeader, RamFlag, RamXbzrleHeader } from '../../grammar/ram.js';
import {
  CommandHeader,
  FileHeader,
  migCommandByValue,
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
import type { MainRecord, MappedRamHeaderValue, RamRecord } from '../model/records.js';

/**
 * Writes Records back to bytes: the mirror of MainChannelDecoder. Byte-exact for every
 * record the decoder produced, because every record keeps each wire field it came from.
 */
export class MainChannelEncoder {
  private mapped = new Map<string, { header: MappedRamHeaderValue; usedLength: number }>();
  /** end offset of the mapped-ram page area being written, if any */
  private openAreaEnd: number | undefined;

  constructor(readonly w: StreamWriter) {}

  write(rec: MainRecord): void {
    const w = this.w;
    if (this.openAreaEnd !== undefined && rec.kind !== 'mapped_ram_bitmap' && rec.kind !== 'mapped_ram_page' && rec.kind !== 'raw') {
      // The stream continues right after the page area: absent pages at its end are holes.
      w.fillTo(this.openAreaEnd);
      this.openAreaEnd = undefined;
    }
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
          writeLayout(w, SubsectionHeader, { marker: SectionType.QEMU_VM_SUBSECTION, name: sub.name, version: sub.version });
          writeLayout(w, def.fields, sub.fields);
        }
        break;
      }
      case 'section':
        w.u8(sectionKindByte[rec.section]);
        writeLayout(w, rec.section === 'START' || rec.section === 'FULL' ? SectionHeaderStartFull : SectionHeaderPartEnd, { ...rec });
        break;
      case 'section_footer':
        w.u8(SectionType.QEMU_VM_SECTION_FOOTER);
        writeLayout(w, SectionFooter, { sectionId: rec.sectionId });
        break;
      case 'ram':
        this.ram(rec);
        break;
      case 'ram_block':
        writeLayout(w, RamBlockEntry, { idstr: rec.idstr, usedLength: rec.usedLength });
        if (rec.pageSize !== undefined) writeLayout(w, RamBlockPageSize, { pageSize: rec.pageSize });
        if (rec.mrAddr !== undefined) writeLayout(w, RamBlockMrAddr, { mrAddr: rec.mrAddr });
        if (rec.mappedRam) {
          const h = rec.mappedRam;
          writeLayout(w, MappedRamHeader, { ...h });
          if (h.pagesOffset !== 0) {
            this.mapped.set(rec.idstr, { header: h, usedLength: rec.usedLength });
            this.openAreaEnd = h.pagesOffset + rec.usedLength;
          }
        }
        break;
      case 'mapped_ram_bitmap': {
        const m = this.mappedBlock(rec.block);
        w.fillTo(m.header.bitmapOffset);
        w.bytes(rec.data);
        // The page area starts at pages_offset; an explicit raw record covers odd padding.
        break;
      }
      case 'mapped_ram_page': {
        const m = this.mappedBlock(rec.block);
        w.fillTo(m.header.pagesOffset + rec.index * m.header.pageSize);
        w.bytes(rec.data);
        break;
      }
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
      case 'command': {
        w.u8(SectionType.QEMU_VM_COMMAND);
        writeLayout(w, CommandHeader, { cmd: rec.cmd, len: rec.len });
        if (rec.data) w.bytes(rec.data);
        else if (rec.fields && rec.len > 0) writeLayout(w, migCommandByValue.get(rec.cmd)!.payload, rec.fields);
        break;
      }
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
    if (this.openAreaEnd !== undefined) this.w.fillTo(this.openAreaEnd);
    this.openAreaEnd = undefined;
    this.w.flush();
  }

  private mappedBlock(name: string): { header: MappedRamHeaderValue; usedLength: number } {
    const m = this.mapped.get(name);
    if (!m) throw new Error(`mapped-ram record for block ${name} before its MEM_SIZE entry`);
    return m;
  }

  private ram(rec: RamRecord): void {
    const w = this.w;
    w.be64Number(rec.addr + rec.flags);
    switch (rec.op) {
      case 'mem_size':
      case 'eos':
      case 'multifd_flush':
        return;
      default:
        if (!(rec.flags & RamFlag.RAM_SAVE_FLAG_CONTINUE)) w.counted(rec.block);
    }
    switch (rec.op) {
      case 'zero':
        w.u8(rec.fill);
        break;
      case 'page':
        w.bytes(rec.data);
        break;
      case 'xbzrle':
        writeLayout(w, RamXbzrleHeader, { encoding: rec.encoding, encodedLength: rec.data.length });
        w.bytes(rec.data);
        break;
      case 'compress_page':
        writeLayout(w, RamCompressHeader, { compressedLength: rec.data.length });
        w.bytes(rec.data);
        break;
    }
  }
}
