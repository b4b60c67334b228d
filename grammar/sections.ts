/**
 * Sections that the vmdescription never describes, other than "ram": their payloads are
 * sequences of items, each a layout. Spec: savevm-main-channel.md §7 and the corrections
 * (#46-#49). Item layouts may have fields present only under flag conditions (`when`).
 */
import type { Layout } from './layout.js';

export interface SectionItemGrammar {
  readonly name: string;
  readonly layout: Layout;
}

export interface BuiltinSectionGrammar {
  /** section idstr as QEMU registers it */
  readonly idstr: string;
  readonly items: readonly SectionItemGrammar[];
}

// spapr/htab (hw/ppc/spapr.c), instance 0, version 1
export const HASH_PTE_SIZE_64 = 16;
export const HTAB_NO_HPT = 0xffffffff;
export const SpaprHtab: BuiltinSectionGrammar = {
  idstr: 'spapr/htab',
  items: [
    // START: htab_shift (or HTAB_NO_HPT); PART/END: 0 (or HTAB_NO_HPT), then chunks
    { name: 'header', layout: [{ name: 'value', type: 'be32' }] },
    {
      name: 'chunk',
      layout: [
        { name: 'index', type: 'be32' },
        { name: 'nValid', type: 'be16' },
        { name: 'nInvalid', type: 'be16' },
        { name: 'hptes', type: 'bytes', length: 'nValid', scale: HASH_PTE_SIZE_64 },
      ],
    },
  ],
};

// s390-storage_attributes (hw/s390x/s390-stattrib.c), instance 0, version 0
export const StattrFlag = {
  STATTR_FLAG_EOS: 0x01,
  STATTR_FLAG_MORE: 0x02,
  STATTR_FLAG_ERROR: 0x04,
  STATTR_FLAG_DONE: 0x08,
} as const;
export const S390StorageAttributes: BuiltinSectionGrammar = {
  idstr: 's390-storage_attributes',
  items: [
    {
      name: 'record',
      layout: [
        { name: 'addrFlags', type: 'be64', doc: '(gfn << TARGET_PAGE_BITS) | STATTR_FLAG_*' },
        { name: 'count', type: 'be64', when: [{ field: 'addrFlags', mask: StattrFlag.STATTR_FLAG_MORE, set: true }] },
        {
          name: 'attributes',
          type: 'bytes',
          length: 'count',
          when: [{ field: 'addrFlags', mask: StattrFlag.STATTR_FLAG_MORE, set: true }],
        },
      ],
    },
  ],
};

// s390-skeys (hw/s390x/s390-skeys.c), instance 0, version 1; old-style FULL section
export const SkeysFlag = {
  S390_SKEYS_SAVE_FLAG_EOS: 0x01,
  S390_SKEYS_SAVE_FLAG_SKEYS: 0x02,
  S390_SKEYS_SAVE_FLAG_ERROR: 0x04,
} as const;
export const S390Skeys: BuiltinSectionGrammar = {
  idstr: 's390-skeys',
  items: [
    {
      name: 'record',
      layout: [
        { name: 'addrFlags', type: 'be64', doc: '(gfn * page size) | S390_SKEYS_SAVE_FLAG_*' },
        {
          name: 'pages',
          type: 'be64',
          when: [{ field: 'addrFlags', mask: SkeysFlag.S390_SKEYS_SAVE_FLAG_SKEYS, set: true }],
        },
        {
          name: 'keys',
          type: 'bytes',
          length: 'pages',
          when: [{ field: 'addrFlags', mask: SkeysFlag.S390_SKEYS_SAVE_FLAG_SKEYS, set: true }],
        },
      ],
    },
  ],
};

// dirty-bitmap (migration/block-dirty-bitmap.c), instance 0, version 1
export const DirtyBitmapFlag = {
  DIRTY_BITMAP_MIG_FLAG_EOS: 0x01,
  DIRTY_BITMAP_MIG_FLAG_ZEROES: 0x02,
  DIRTY_BITMAP_MIG_FLAG_BITMAP_NAME: 0x04,
  DIRTY_BITMAP_MIG_FLAG_DEVICE_NAME: 0x08,
  DIRTY_BITMAP_MIG_FLAG_START: 0x10,
  DIRTY_BITMAP_MIG_FLAG_COMPLETE: 0x20,
  DIRTY_BITMAP_MIG_FLAG_BITS: 0x40,
  DIRTY_BITMAP_MIG_EXTRA_FLAGS: 0x80,
} as const;
const F = DirtyBitmapFlag;
export const DirtyBitmap: BuiltinSectionGrammar = {
  idstr: 'dirty-bitmap',
  items: [
    {
      name: 'record',
      layout: [
        { name: 'flags', type: 'u8', doc: 'QEMU always writes one flag byte' },
        {
          name: 'deviceName',
          type: 'counted',
          when: [{ field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_DEVICE_NAME, set: true }],
        },
        {
          name: 'bitmapName',
          type: 'counted',
          when: [{ field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_BITMAP_NAME, set: true }],
        },
        {
          name: 'granularity',
          type: 'be32',
          when: [{ field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_START, set: true }],
        },
        { name: 'bitmapFlags', type: 'u8', when: [{ field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_START, set: true }] },
        {
          name: 'startSector',
          type: 'be64',
          when: [{ field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_BITS, set: true }],
        },
        { name: 'nrSectors', type: 'be32', when: [{ field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_BITS, set: true }] },
        {
          name: 'bufSize',
          type: 'be64',
          when: [
            { field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_BITS, set: true },
            { field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_ZEROES, set: false },
          ],
        },
        {
          name: 'buf',
          type: 'bytes',
          length: 'bufSize',
          doc: 'little-endian unsigned longs',
          when: [
            { field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_BITS, set: true },
            { field: 'flags', mask: F.DIRTY_BITMAP_MIG_FLAG_ZEROES, set: false },
          ],
        },
      ],
    },
  ],
};

export const BUILTIN_SECTIONS: readonly BuiltinSectionGrammar[] = [
  SpaprHtab,
  S390StorageAttributes,
  S390Skeys,
  DirtyBitmap,
];
