/**
 * VFIO device sections (hw/vfio/migration.c, migration-multifd.c, pci.c).
 * Spec: vfio-and-multifd.md §2-§6, §9.1 with its verification file.
 */
import type { Layout } from './layout.js';

/** Section idstr: "<device path>/vfio", or "vfio" for a device without a path. */
export const VFIO_IDSTR_SUFFIX = '/vfio';
export function isVfioIdstr(idstr: string): boolean {
  return idstr === 'vfio' || idstr.endsWith(VFIO_IDSTR_SUFFIX);
}
export const VFIO_SECTION_VERSION = 1;

/** VFIO_MIG_FLAG_* (be64 tags): high word all ones, then 0xef10, then the tag number. */
export const VfioTag = {
  END_OF_STATE: 0xffffffffef100001n,
  DEV_CONFIG_STATE: 0xffffffffef100002n,
  DEV_SETUP_STATE: 0xffffffffef100003n,
  DEV_DATA_STATE: 0xffffffffef100004n,
  DEV_INIT_DATA_SENT: 0xffffffffef100005n,
  DEV_CONFIG_LOAD_READY: 0xffffffffef100006n,
} as const;
export type VfioTagName = keyof typeof VfioTag;

/** QEMU's own names, for messages a QEMU developer recognizes. */
export const VFIO_TAG_QEMU_NAME: Readonly<Record<VfioTagName, string>> = {
  END_OF_STATE: 'VFIO_MIG_FLAG_END_OF_STATE',
  DEV_CONFIG_STATE: 'VFIO_MIG_FLAG_DEV_CONFIG_STATE',
  DEV_SETUP_STATE: 'VFIO_MIG_FLAG_DEV_SETUP_STATE',
  DEV_DATA_STATE: 'VFIO_MIG_FLAG_DEV_DATA_STATE',
  DEV_INIT_DATA_SENT: 'VFIO_MIG_FLAG_DEV_INIT_DATA_SENT',
  DEV_CONFIG_LOAD_READY: 'VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY',
};

/** The QEMU release that introduced each tag (older loaders answer "Unknown tag"). */
export const VFIO_TAG_SINCE: Readonly<Record<VfioTagName, [number, number]>> = {
  END_OF_STATE: [5, 2],
  DEV_CONFIG_STATE: [5, 2],
  DEV_SETUP_STATE: [5, 2],
  DEV_DATA_STATE: [5, 2],
  DEV_INIT_DATA_SENT: [8, 1],
  DEV_CONFIG_LOAD_READY: [10, 1],
};

export const vfioTagByValue: ReadonlyMap<bigint, VfioTagName> = new Map(
  (Object.entries(VfioTag) as [VfioTagName, bigint][]).map(([k, v]) => [v, k]),
);

/** After DEV_DATA_STATE: be64 size, then `size` opaque device bytes. */
export const VfioDataHeader = [{ name: 'size', type: 'be64' }] as const satisfies Layout;

/**
 * PCI config state after DEV_CONFIG_STATE: vmstate "VFIOPCIDevice" v1 = PCIDevice
 * version_id, config space, irq state, [MSI-X table + PBA], [VFIODisplay subsection].
 */
export const VFIO_PCI_VMSD = 'VFIOPCIDevice';
export const PCI_DEVICE_VERSION_ID = 2;
export const PCI_CONFIG_SPACE_SIZE = 256;
export const PCIE_CONFIG_SPACE_SIZE = 4096;
export const PCI_NUM_PINS = 4;
export const PCI_MSIX_ENTRY_SIZE = 16;
/** Config-space offsets used to find the MSI-X capability (PCI Local Bus spec). */
export const PCI_STATUS = 0x06;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
export const VFIO_DISPLAY_SUBSECTION = 'VFIOPCIDevice/VFIODisplay';
/** packed RAMFBCfg: be64 addr, be32 fourcc, flags, width, height, stride */
export const RAMFB_CFG_SIZE = 28;

/** VFIODeviceStatePacket: the payload of a multifd device-state packet (10.0+, big-endian). */
export const VfioDeviceStatePacketHeader = [
  { name: 'version', type: 'be32', doc: 'VFIO_DEVICE_STATE_PACKET_VER_CURRENT = 0' },
  { name: 'idx', type: 'be32' },
  { name: 'flags', type: 'be32', doc: 'VFIO_DEVICE_STATE_CONFIG_STATE = 1 on the last buffer' },
] as const satisfies Layout;
export const VFIO_DEVICE_STATE_PACKET_VER_CURRENT = 0;
export const VFIO_DEVICE_STATE_CONFIG_STATE = 0x1;
export const VFIO_DEVICE_STATE_IDX_INVALID = 0xffffffff;
