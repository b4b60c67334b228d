import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSIX,
  PCI_CAPABILITY_LIST,
  PCI_CONFIG_SPACE_SIZE,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_NUM_PINS,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCIE_CONFIG_SPACE_SIZE,
  RAMFB_CFG_SIZE,
  VfioTag,
} from '../../grammar/vfio.js';
import { SectionType } from '../../grammar/savevm.js';
import { byteAt } from '../io/bytes.js';

/** Capability ids in the standard capability list of a config space, with their offsets. */
export function pciCapabilities(config: Uint8Array): Map<number, number> {
  const caps = new Map<number, number>();
  if (config.length < PCI_CONFIG_SPACE_SIZE || !(byteAt(config, PCI_STATUS) & PCI_STATUS_CAP_LIST)) return caps;
  let ptr = byteAt(config, PCI_CAPABILITY_LIST) & 0xfc;
  // a list can loop: at most 48 capabilities fit in the 192 bytes after the header
  for (let i = 0; i < 48 && ptr >= 0x40 && ptr < PCI_CONFIG_SPACE_SIZE - 1; i++) {
    const id = byteAt(config, ptr);
    if (!caps.has(id)) caps.set(id, ptr);
    ptr = byteAt(config, ptr + 1) & 0xfc;
  }
  return caps;
}

/** MSI-X vectors the device declares (Message Control table size + 1), 0 without MSI-X. */
export function msixVectors(config: Uint8Array): number {
  const at = pciCapabilities(config).get(PCI_CAP_ID_MSIX);
  if (at === undefined) return 0;
  const control = byteAt(config, at + PCI_MSIX_FLAGS) | (byteAt(config, at + PCI_MSIX_FLAGS + 1) << 8); // config space is little-endian
  return (control & PCI_MSIX_FLAGS_QSIZE) + 1;
}

export interface PciConfigLayout {
  configSize: number;
  vectors: number;
  /** length of the subsection (header + ramfb), 0 when absent */
  displayLength: number;
  /** bytes of the whole VFIOPCIDevice state */
  total: number;
}

const END_OF_STATE_BYTES = (() => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, VfioTag.END_OF_STATE);
  return b;
})();

export function isEndOfState(win: Uint8Array, at: number): boolean {
  if (at + 8 > win.length) return false;
  for (let i = 0; i < 8; i++) if (win[at + i] !== END_OF_STATE_BYTES[i]) return false;
  return true;
}

/**
 * QEMU knows the config size from the destination device (256 unless Express); a reader of
 * the stream alone tries both and keeps the one after which END_OF_STATE follows. Express
 * devices are tried at 4096 first.
 */
export function fitPciConfig(win: Uint8Array): PciConfigLayout | undefined {
  if (win.length < 4 + PCI_CONFIG_SPACE_SIZE) return undefined;
  const first = win.subarray(4, 4 + PCI_CONFIG_SPACE_SIZE);
  const express = pciCapabilities(first).has(PCI_CAP_ID_EXP);
  const sizes = express
    ? [PCIE_CONFIG_SPACE_SIZE, PCI_CONFIG_SPACE_SIZE]
    : [PCI_CONFIG_SPACE_SIZE, PCIE_CONFIG_SPACE_SIZE];
  for (const configSize of sizes) {
    if (win.length < 4 + configSize) continue;
    const vectors = msixVectors(win.subarray(4, 4 + PCI_CONFIG_SPACE_SIZE));
    let len =
      4 + configSize + 4 * PCI_NUM_PINS + (vectors ? vectors * PCI_MSIX_ENTRY_SIZE + Math.ceil(vectors / 8) : 0);
    let displayLength = 0;
    if (len + 2 <= win.length && win[len] === SectionType.QEMU_VM_SUBSECTION) {
      displayLength = 2 + byteAt(win, len + 1) + 4 + RAMFB_CFG_SIZE;
      len += displayLength;
    }
    if (isEndOfState(win, len)) return { configSize, vectors, displayLength, total: len };
  }
  return undefined;
}
