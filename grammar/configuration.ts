/**
 * QEMU_VM_CONFIGURATION (0x07): the vmstate "configuration" v1, sent right after the
 * file header without section header or footer. Spec: savevm-main-channel.md §3.
 */
import type { Layout } from './layout.js';

export const CONFIGURATION_VMSD_NAME = 'configuration';

export const ConfigurationFields = [
  { name: 'len', type: 'be32', doc: 'machine type name length' },
  { name: 'name', type: 'bytes', length: 'len', doc: 'machine type name, no NUL' },
] as const satisfies Layout;

/** Header of every vmstate subsection (QEMU_VM_SUBSECTION marker, counted name, be32 version). */
export const SubsectionHeader = [
  { name: 'marker', type: 'u8', expect: 0x05 },
  { name: 'name', type: 'counted' },
  { name: 'version', type: 'be32' },
] as const satisfies Layout;

export interface ConfigurationSubsection {
  readonly name: string;
  readonly fields: Layout;
}

/** In the order QEMU's vmsd lists (and so sends) them. */
export const ConfigurationSubsections: readonly ConfigurationSubsection[] = [
  { name: 'configuration/target-page-bits', fields: [{ name: 'targetPageBits', type: 'be32' }] },
  {
    name: 'configuration/capabilities',
    fields: [
      { name: 'capsCount', type: 'be32' },
      { name: 'capabilities', type: 'repeat', count: 'capsCount', element: [{ name: 'name', type: 'counted' }] },
    ],
  },
  { name: 'configuration/uuid', fields: [{ name: 'uuid', type: 'bytes', length: 16 }] },
];

/** Capabilities QEMU validates through the configuration (the only ones that can appear). */
export const VALIDATED_CAPABILITIES = ['x-ignore-shared', 'mapped-ram'] as const;

/**
 * TARGET_PAGE_BITS of the x86 machine types (pc, q35, isapc, microvm, xenfv, xenpv and their
 * versioned names): 12 bits, fixed for the target. Their sources send no target-page-bits
 * subsection (only targets whose page size varies do: vmstate_target_page_bits_needed), so a
 * destination of such a machine has 12 whatever its stream says.
 */
export const X86_MACHINE_TYPE = /^(pc|q35|isapc|microvm|xenfv|xenpv)(-|$)/;
export const X86_TARGET_PAGE_BITS = 12;
