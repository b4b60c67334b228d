/**
 * Payload readers for the sections QEMU never describes in the vmdescription
 * (grammar/sections.ts): each knows only where its item sequence ends; the items
 * themselves are read and written with the grammar's layouts.
 */
import type { StreamWriter } from '../io/sink.js';
import { writeLayout } from '../layout/write.js';
import type { SectionItemRecord } from '../model/records.js';
import {
  BUILTIN_SECTIONS,
  DirtyBitmap,
  DirtyBitmapFlag,
  S390Skeys,
  S390StorageAttributes,
  SkeysFlag,
  SpaprHtab,
  StattrFlag,
  type BuiltinSectionGrammar,
} from '../../grammar/sections.js';
import { hex } from '../model/errors.js';
import type { StreamReader } from '../io/reader.js';
import { bigintField, intField } from '../layout/fields.js';
import { readLayout } from '../layout/read.js';
import type { LayoutValue } from '../layout/types.js';

export interface DecodedItem {
  item: string;
  offset: number;
  length: number;
  fields: LayoutValue;
}

export const builtinByIdstr: ReadonlyMap<string, BuiltinSectionGrammar> = new Map(
  BUILTIN_SECTIONS.map((g) => [g.idstr, g]),
);

export function itemLayout(handler: string, item: string) {
  const g = builtinByIdstr.get(handler);
  const it = g?.items.find((i) => i.name === item);
  if (!it) throw new Error(`no grammar for item ${item} of section ${handler}`);
  return it.layout;
}

function readItem(r: StreamReader, g: BuiltinSectionGrammar, item: string): DecodedItem {
  const offset = r.offset;
  const fields = readLayout(r, itemLayout(g.idstr, item), `${g.idstr} ${item}`);
  return { item, offset, length: r.offset - offset, fields };
}

const low12 = (v: LayoutValue, name: string): number => Number(bigintField(v, name) & 0xfffn);

export function* readBuiltinPayload(r: StreamReader, g: BuiltinSectionGrammar): Generator<DecodedItem> {
  if (g === SpaprHtab) {
    const head = readItem(r, g, 'header');
    yield head;
    // START carries htab_shift; PART/END carry 0 followed by chunks; HTAB_NO_HPT ends it.
    if (head.fields.value !== 0) return; // htab_shift (START), or HTAB_NO_HPT
    for (;;) {
      const c = readItem(r, g, 'chunk');
      yield c;
      if (c.fields.index === 0 && c.fields.nValid === 0 && c.fields.nInvalid === 0) return;
    }
  }
  if (g === S390StorageAttributes) {
    for (;;) {
      const rec = readItem(r, g, 'record');
      yield rec;
      const flags = low12(rec.fields, 'addrFlags');
      if (flags & StattrFlag.STATTR_FLAG_EOS) return;
      if (flags & StattrFlag.STATTR_FLAG_ERROR)
        throw r.error(
          'bad-value',
          's390 storage attributes without STATTR_FLAG_ERROR',
          `flags ${hex(flags)}`,
          rec.offset,
        );
      if (!(flags & (StattrFlag.STATTR_FLAG_MORE | StattrFlag.STATTR_FLAG_DONE))) {
        throw r.error('bad-value', 'STATTR_FLAG_MORE, DONE or EOS', `flags ${hex(flags)}`, rec.offset);
      }
    }
  }
  if (g === S390Skeys) {
    for (;;) {
      const rec = readItem(r, g, 'record');
      yield rec;
      const flags = low12(rec.fields, 'addrFlags');
      if (flags & (SkeysFlag.S390_SKEYS_SAVE_FLAG_EOS | SkeysFlag.S390_SKEYS_SAVE_FLAG_ERROR)) return;
      if (!(flags & SkeysFlag.S390_SKEYS_SAVE_FLAG_SKEYS))
        throw r.error('bad-value', 'S390_SKEYS_SAVE_FLAG_SKEYS, EOS or ERROR', `flags ${hex(flags)}`, rec.offset);
    }
  }
  if (g === DirtyBitmap) {
    for (;;) {
      const first = r.peekU8();
      if (first >= 0 && first & DirtyBitmapFlag.DIRTY_BITMAP_MIG_EXTRA_FLAGS) {
        throw r.error(
          'bad-value',
          'one dirty-bitmap flag byte (QEMU never sets DIRTY_BITMAP_MIG_EXTRA_FLAGS)',
          `flags ${hex(first)}`,
        );
      }
      const rec = readItem(r, g, 'record');
      yield rec;
      if (intField(rec.fields, 'flags') & DirtyBitmapFlag.DIRTY_BITMAP_MIG_FLAG_EOS) return;
    }
  }
  throw new Error(`no reader for section ${g.idstr}`);
}

/** The mirror of readBuiltinPayload, one item at a time. */
export function writeBuiltinItem(w: StreamWriter, rec: SectionItemRecord): void {
  writeLayout(w, itemLayout(rec.handler, rec.item), rec.fields);
}
