/** `dump --format summary` and `stats`: what a stream holds, per section and per RAMBlock. */
import { stringField } from '../layout/fields.js';
import type { MainRecord } from '../model/records.js';

/** Bytes and records of one section (device) of the stream. */
export interface SectionStats {
  idstr: string;
  instanceId: number;
  sectionIds: Set<number>;
  parts: Record<'START' | 'PART' | 'END' | 'FULL', number>;
  bytes: number;
}

/** Pages of one RAMBlock by kind (normal, zero, XBZRLE, ...) and their bytes. */
export interface RamBlockStats {
  usedLength: number;
  pages: number;
  zeroPages: number;
  xbzrlePages: number;
  compressedPages: number;
  payloadBytes: number;
}

/** Bytes and records of a main stream per section, device and RAMBlock (`dump --format summary`, `stats`). */
export class StreamSummary {
  records = 0;
  bytes = 0;
  machineType: string | undefined;
  capabilities: string[] = [];
  readonly sections = new Map<string, SectionStats>();
  readonly commands = new Map<string, number>();
  readonly ramRecords = new Map<string, number>();
  readonly ramBlocks = new Map<string, RamBlockStats>();
  vmdescription: { offset: number; length: number } | undefined;
  eof = false;
  private current: SectionStats | undefined;
  private sectionStart = 0;

  /** Count the next record of the stream. */
  add(rec: MainRecord): void {
    this.records++;
    this.bytes = Math.max(this.bytes, rec.offset + rec.length);
    switch (rec.kind) {
      case 'configuration':
        this.machineType = rec.machineType;
        for (const s of rec.subsections) {
          const caps = s.fields.capabilities;
          if (Array.isArray(caps)) this.capabilities.push(...caps.map((c) => stringField(c, 'name')));
        }
        break;
      case 'section': {
        const key = `${rec.idstr} (instance ${rec.instanceId})`;
        let st = this.sections.get(key);
        if (!st) {
          st = {
            idstr: rec.idstr,
            instanceId: rec.instanceId,
            sectionIds: new Set(),
            parts: { START: 0, PART: 0, END: 0, FULL: 0 },
            bytes: 0,
          };
          this.sections.set(key, st);
        }
        st.sectionIds.add(rec.sectionId);
        st.parts[rec.section]++;
        this.current = st;
        this.sectionStart = rec.offset;
        break;
      }
      case 'section_footer':
        if (this.current) this.current.bytes += rec.offset + rec.length - this.sectionStart;
        this.current = undefined;
        break;
      case 'command':
        this.commands.set(rec.name, (this.commands.get(rec.name) ?? 0) + 1);
        break;
      case 'ram_block':
        this.ramBlocks.set(rec.idstr, {
          usedLength: rec.usedLength,
          pages: 0,
          zeroPages: 0,
          xbzrlePages: 0,
          compressedPages: 0,
          payloadBytes: 0,
        });
        break;
      case 'ram': {
        this.ramRecords.set(rec.op, (this.ramRecords.get(rec.op) ?? 0) + 1);
        if (!('block' in rec)) break;
        const b = this.ramBlocks.get(rec.block);
        if (!b) break;
        if (rec.op === 'zero') b.zeroPages++;
        else if (rec.op === 'page') {
          b.pages++;
          b.payloadBytes += rec.data.length;
        } else if (rec.op === 'xbzrle') {
          b.xbzrlePages++;
          b.payloadBytes += rec.data.length;
        } else {
          b.compressedPages++;
          b.payloadBytes += rec.data.length;
        }
        break;
      }
      case 'mapped_ram_page': {
        const b = this.ramBlocks.get(rec.block);
        if (b && rec.present) {
          b.pages++;
          b.payloadBytes += rec.data.length;
        }
        break;
      }
      case 'eof':
        this.eof = true;
        break;
      case 'vmdescription':
        this.vmdescription = { offset: rec.offset, length: rec.length };
        break;
      default:
        break;
    }
  }

  /** Sections without footers are closed by the next top-level record. */
  closeOpenSection(rec: MainRecord): void {
    if (this.current && !rec.depth && (rec.kind === 'section' || rec.kind === 'command' || rec.kind === 'eof')) {
      this.current.bytes += rec.offset - this.sectionStart;
      this.current = undefined;
    }
  }

  /** The figures as JSON. */
  toJSON(): object {
    return {
      bytes: this.bytes,
      records: this.records,
      machineType: this.machineType,
      capabilities: this.capabilities,
      sections: [...this.sections.values()].map((s) => ({
        idstr: s.idstr,
        instanceId: s.instanceId,
        sectionIds: [...s.sectionIds],
        ...s.parts,
        bytes: s.bytes,
      })),
      commands: Object.fromEntries(this.commands),
      ramRecords: Object.fromEntries(this.ramRecords),
      ramBlocks: Object.fromEntries(this.ramBlocks),
      eof: this.eof,
      vmdescription: this.vmdescription ?? null,
    };
  }
}
