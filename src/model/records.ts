/**
 * The Record model of the main channel: one discriminated union (`kind`) for everything
 * decode yields and encode consumes. Every record knows its absolute byte offset and
 * length; `depth` is 1 for records inside a MIG_CMD_PACKAGED blob.
 *
 * Byte payloads (`data`) are views into the reader's buffer while streaming: valid until
 * the next record is pulled, unless decoding was asked to copy them.
 */
import type { SectionKind } from '../../grammar/savevm.js';
import type { VfioTagName } from '../../grammar/vfio.js';
import type { LayoutValue, ValueOf } from '../../grammar/layout.js';
import type { MappedRamHeader } from '../../grammar/ram.js';
import type { VmstateNode } from './vmstate-nodes.js';

/** What every record has: where it starts in its channel and how many bytes it spans. */
export interface RecordBase {
  offset: number;
  length: number;
  depth?: number;
}

/** The wrapper of a libvirt save image in front of the QEMU stream. */
export interface LibvirtHeaderRecord extends RecordBase {
  kind: 'libvirt_header';
  magic: string;
  littleEndian: boolean;
  version: number;
  dataLen: number;
  wasRunning: number;
  format: number;
  cookieOffset: number;
  unused: Uint8Array;
  /** XML, NUL, cookie, NUL and zero padding, as found */
  data: Uint8Array;
}

/** QEMU_VM_FILE_MAGIC and QEMU_VM_FILE_VERSION, the first eight bytes of a main stream. */
export interface FileHeaderRecord extends RecordBase {
  kind: 'file_header';
  magic: number;
  version: number;
}

/** A subsection of the configuration section (target-page-bits, capabilities, uuid, ...) with its decoded fields. */
export interface ConfigurationSubsectionValue {
  name: string;
  version: number;
  fields: LayoutValue;
}

/** QEMU_VM_CONFIGURATION: the machine type and the configuration subsections. */
export interface ConfigurationRecord extends RecordBase {
  kind: 'configuration';
  /** machine type name bytes as latin1 (e.g. "pc-i440fx-11.1") */
  machineType: string;
  subsections: ConfigurationSubsectionValue[];
}

/** The header of a QEMU_VM_SECTION_START / PART / END / FULL record. */
export interface SectionHeaderRecord extends RecordBase {
  kind: 'section';
  section: SectionKind;
  sectionId: number;
  /** written only for START/FULL; for PART/END copied from the START for readability */
  idstr: string;
  instanceId: number;
  versionId: number;
}

/** QEMU_VM_SECTION_FOOTER closing a section (streams with section footers). */
export interface SectionFooterRecord extends RecordBase {
  kind: 'section_footer';
  sectionId: number;
}

interface RamRecordBase extends RecordBase {
  kind: 'ram';
  /** the flag bits of the record header, CONTINUE included */
  flags: number;
  /** the address bits: offset inside the RAMBlock, or the total for MEM_SIZE */
  addr: number;
}

/** RAM_SAVE_FLAG_MEM_SIZE: the total RAM size; the RAMBlock list (RamBlockRecord) follows. */
export interface RamMemSizeRecord extends RamRecordBase {
  op: 'mem_size';
}
/** RAM_SAVE_FLAG_EOS or RAM_SAVE_FLAG_MULTIFD_FLUSH: ends a RAM section part, or marks a multifd sync point. */
export interface RamMarkerRecord extends RamRecordBase {
  op: 'eos' | 'multifd_flush';
}
/** RAM_SAVE_FLAG_ZERO: a page filled with one byte value. */
export interface RamZeroRecord extends RamRecordBase {
  op: 'zero';
  block: string;
  fill: number;
}
/** RAM_SAVE_FLAG_PAGE: a whole page of guest memory. */
export interface RamPageRecord extends RamRecordBase {
  op: 'page';
  block: string;
  data: Uint8Array;
}
/** RAM_SAVE_FLAG_XBZRLE: a page as a delta against the page sent before. */
export interface RamXbzrleRecord extends RamRecordBase {
  op: 'xbzrle';
  block: string;
  encoding: number;
  data: Uint8Array;
}
/** RAM_SAVE_FLAG_COMPRESS_PAGE: a zlib-compressed page (QEMU up to 9.0). */
export interface RamCompressRecord extends RamRecordBase {
  op: 'compress_page';
  block: string;
  data: Uint8Array;
}
/** A record of the RAM section, told apart by `op`. */
export type RamRecord =
  RamMemSizeRecord | RamMarkerRecord | RamZeroRecord | RamPageRecord | RamXbzrleRecord | RamCompressRecord;

/** MappedRamHeader's fields, typed from its grammar layout */
export type MappedRamHeaderValue = ValueOf<typeof MappedRamHeader>;

/** One RAMBlock entry of the MEM_SIZE record. */
export interface RamBlockRecord extends RecordBase {
  kind: 'ram_block';
  idstr: string;
  usedLength: number;
  /** postcopy-ram with a huge-page block */
  pageSize?: number;
  /** x-ignore-shared */
  mrAddr?: number;
  /** mapped-ram */
  mappedRam?: MappedRamHeaderValue;
}

/** mapped-ram: the page-presence bitmap of a block (host-long layout). */
export interface MappedRamBitmapRecord extends RecordBase {
  kind: 'mapped_ram_bitmap';
  block: string;
  data: Uint8Array;
}

/** mapped-ram: one page slot at pagesOffset + index * pageSize. Absent slots that are all zero are not listed. */
export interface MappedRamPageRecord extends RecordBase {
  kind: 'mapped_ram_page';
  block: string;
  index: number;
  present: boolean;
  data: Uint8Array;
}

/** Bytes kept as they are: payloads not understood (yet), padding, trailing data. */
export interface RawRecord extends RecordBase {
  kind: 'raw';
  reason: string;
  data: Uint8Array;
}

/** One item of a section the vmdescription never describes (spapr/htab, dirty-bitmap, s390-*). */
export interface SectionItemRecord extends RecordBase {
  kind: 'section_item';
  /** the idstr of the grammar in grammar/sections.ts */
  handler: string;
  item: string;
  fields: LayoutValue;
}

/** One VFIO_MIG_FLAG_* tag of a VFIO section (`tag` null: a value QEMU does not define). */
export interface VfioTagRecord extends RecordBase {
  kind: 'vfio_tag';
  tag: VfioTagName | null;
  value: bigint;
  /** DEV_DATA_STATE: the be64 size of the device data that follows (vfio_data records) */
  size?: number;
}

/** A chunk of the opaque device data after DEV_DATA_STATE (a device state of any size is streamed). */
export interface VfioDataRecord extends RecordBase {
  kind: 'vfio_data';
  data: Uint8Array;
}

/** The VFIOPCIDevice state after DEV_CONFIG_STATE, field by field. */
export interface VfioPciConfigRecord extends RecordBase {
  kind: 'vfio_pci_config';
  /** PCIDevice version_id (2) */
  pciVersion: number;
  /** 256 bytes (conventional PCI) or 4096 (PCI Express) */
  config: Uint8Array;
  /** INTA..INTD levels */
  irqState: number[];
  /** MSI-X table (16 bytes per vector) and PBA, sized from the MSI-X capability in `config` */
  msixTable?: Uint8Array;
  msixPba?: Uint8Array;
  /** the optional VFIOPCIDevice/VFIODisplay subsection (ramfb configuration) */
  display?: { name: string; version: number; ramfb: Uint8Array };
}

/** A device section payload decoded with its vmdescription entry. */
export interface VmstateRecord extends RecordBase {
  kind: 'vmstate';
  idstr: string;
  instanceId: number;
  node: VmstateNode;
}

/** QEMU_VM_COMMAND: a MIG_CMD_* command with its payload. */
export interface CommandRecord extends RecordBase {
  kind: 'command';
  cmd: number;
  /** MIG_CMD_* name, or "MIG_CMD_<n>" when unknown */
  name: string;
  /** the len field as found */
  len: number;
  /** payload decoded with the grammar's layout */
  fields?: LayoutValue;
  /** payload kept raw (unknown command) */
  data?: Uint8Array;
}

/** QEMU_VM_EOF: the end of the device state. */
export interface EofRecord extends RecordBase {
  kind: 'eof';
}

/** QEMU_VM_VMDESCRIPTION: the JSON description of every device section, after QEMU_VM_EOF. */
export interface VmDescriptionRecord extends RecordBase {
  kind: 'vmdescription';
  /** JSON text, bytes as latin1 (QEMU writes ASCII) */
  json: string;
}

/** A record of the main channel, in stream order; `kind` tells them apart. */
export type MainRecord =
  | LibvirtHeaderRecord
  | FileHeaderRecord
  | ConfigurationRecord
  | SectionHeaderRecord
  | SectionFooterRecord
  | RamRecord
  | RamBlockRecord
  | MappedRamBitmapRecord
  | MappedRamPageRecord
  | RawRecord
  | SectionItemRecord
  | VfioTagRecord
  | VfioDataRecord
  | VfioPciConfigRecord
  | VmstateRecord
  | CommandRecord
  | EofRecord
  | VmDescriptionRecord;

/** The `kind` of a main-channel record. */
export type RecordKind = MainRecord['kind'];

/** Something the decoder noticed but could read past: where, in which section, and what. */
export interface DecodeWarning {
  offset: number;
  path: string;
  message: string;
}

/** A record inside a MIG_CMD_PACKAGED blob carries its nesting depth; top-level ones carry none. */
export function withDepth<T extends MainRecord>(rec: T, depth: number): T {
  if (depth) rec.depth = depth;
  return rec;
}
