/**
 * What a destination's device code does with a decoded device section after its fields are
 * loaded (post_load): the checks whose failure QEMU turns into a failed load or an abort.
 * Only devices whose post_load the differential comparison with QEMU has shown to matter are
 * here; each takes the section's decoded fields (a vmdescription or a profile describes them).
 */
import {
  FW_CFG_ACPI_BLOBS,
  FW_CFG_ACPI_MR_SUBSECTION,
  FW_CFG_ROM_BLOCK_PREFIX,
  fwCfgRomMaxLength,
  HOST_PAGE_SIZE,
  hostPageAlign,
} from '../../grammar/fw-cfg.js';
import { hex } from '../model/errors.js';
import { StreamWriter } from '../io/sink.js';
import type { VmstateNode } from '../model/vmstate-nodes.js';
import { writeVmstateNode } from '../vmstate/codec.js';

/** A post_load failure: what was found, in QEMU's terms. */
export interface PostLoadFailure {
  /** offset of the field within the section payload */
  at: number;
  message: string;
}

/** A field's single element as an unsigned big-endian number (BigInt: a uint64 may not fit a double). */
function uintField(node: VmstateNode, name: string): bigint | undefined {
  const e = node.fields.find((f) => f.name === name)?.elements[0];
  if (e?.kind !== 'bytes') return undefined;
  let v = 0n;
  for (const b of e.data) v = (v << 8n) | BigInt(b);
  return v;
}

/** How many bytes `node` takes on the wire, as the codec writes it (fields, then each subsection with its header). */
function wireBytes(node: VmstateNode): number {
  const w = new StreamWriter({ write: () => undefined, close: () => undefined }, 4096);
  writeVmstateNode(w, node);
  return w.position;
}

/**
 * fw_cfg's "fw_cfg/acpi_mr" post_load (hw/nvram/fw_cfg.c): each ACPI blob's RAMBlock is resized
 * to the size the stream gives, rounded up to a host page, with error_abort; past the block's
 * max_length qemu_ram_resize fails and the destination aborts.
 */
export function fwCfgAcpiSizes(node: VmstateNode): PostLoadFailure[] {
  const k = node.subsections.findIndex((sub) => sub.name === FW_CFG_ACPI_MR_SUBSECTION);
  const sub = node.subsections[k];
  if (!sub) return [];
  const out: PostLoadFailure[] = [];
  for (const blob of FW_CFG_ACPI_BLOBS) {
    const i = sub.node.fields.findIndex((f) => f.name === blob.field);
    const size = uintField(sub.node, blob.field);
    if (size === undefined) continue;
    const page = BigInt(HOST_PAGE_SIZE);
    const aligned = ((size + page - 1n) / page) * page;
    if (aligned <= BigInt(blob.maxLength)) continue;
    // the field's offset: everything before it, written as the codec writes it (the subsection's header
    // included), less the field itself
    const before: VmstateNode = {
      fields: node.fields,
      subsections: [
        ...node.subsections.slice(0, k),
        { ...sub, node: { fields: sub.node.fields.slice(0, i + 1), subsections: [] } },
      ],
    };
    out.push({
      at: wireBytes(before) - wireBytes({ fields: [sub.node.fields[i]!], subsections: [] }),
      message: `${FW_CFG_ACPI_MR_SUBSECTION} ${blob.field} 0x${size.toString(16)}: resizing ${blob.ramBlock} to it fails (its maximum is 0x${blob.maxLength.toString(16)}), and QEMU aborts (error_abort in fw_cfg's post_load)`,
    });
  }
  return out;
}

/**
 * ram_load's resize of a RAMBlock to the length a MEM_SIZE entry gives (physmem.c
 * qemu_ram_resize, QEMU 5.1 and later): the length is rounded up to a host page first; a block
 * that already has that length is left alone; otherwise only a resizeable block (a fw_cfg ROM
 * blob) takes it, up to its max_length. QEMU's error text when the resize fails, else undefined.
 */
export function ramBlockResizeFailure(idstr: string, length: number, ownLength: number): string | undefined {
  const size = hostPageAlign(length);
  if (size === ownLength) return undefined;
  if (!idstr.startsWith(FW_CFG_ROM_BLOCK_PREFIX))
    return `Size mismatch: ${idstr}: ${hex(size)} != ${hex(ownLength)}: Invalid argument`;
  const max = fwCfgRomMaxLength(idstr, ownLength);
  if (size > max) return `Size too large: ${idstr}: ${hex(size)} > ${hex(max)}: Invalid argument`;
  return undefined;
}
