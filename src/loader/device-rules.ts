/**
 * What a destination's device code does with a decoded device section after its fields are
 * loaded (post_load): the checks whose failure QEMU turns into a failed load or an abort.
 * Only devices whose post_load the differential comparison with QEMU has shown to matter are
 * here; each takes the section's decoded fields (a vmdescription or a profile describes them).
 */
import { FW_CFG_ACPI_BLOBS, FW_CFG_ACPI_MR_SUBSECTION, HOST_PAGE_SIZE } from '../../grammar/fw-cfg.js';
import type { VmstateNode } from '../model/vmstate-nodes.js';

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

/** Where a named field of `node` starts, counting from the node's first byte (subsections after the fields, each with its header). */
function fieldAt(node: VmstateNode, name: string): number | undefined {
  let at = 0;
  for (const f of node.fields) {
    if (f.name === name) return at;
    at += nodeFieldBytes(f.elements);
  }
  return undefined;
}

function nodeFieldBytes(elements: VmstateNode['fields'][number]['elements']): number {
  let n = 0;
  for (const e of elements)
    n += e.kind === 'bytes' ? e.data.length : e.kind === 'struct' ? nodeBytes(e.node) : 1 + e.name.length;
  return n;
}

function nodeBytes(node: VmstateNode): number {
  let n = 0;
  for (const f of node.fields) n += nodeFieldBytes(f.elements);
  // marker, counted name, be32 version
  for (const s of node.subsections) n += 1 + 1 + s.name.length + 4 + nodeBytes(s.node);
  return n;
}

/**
 * fw_cfg's "fw_cfg/acpi_mr" post_load (hw/nvram/fw_cfg.c): each ACPI blob's RAMBlock is resized
 * to the size the stream gives, rounded up to a host page, with error_abort; past the block's
 * max_length qemu_ram_resize fails and the destination aborts.
 */
export function fwCfgAcpiSizes(node: VmstateNode): PostLoadFailure[] {
  let at = nodeBytes({ fields: node.fields, subsections: [] });
  for (const sub of node.subsections) {
    const header = 1 + 1 + sub.name.length + 4;
    if (sub.name !== FW_CFG_ACPI_MR_SUBSECTION) {
      at += header + nodeBytes(sub.node);
      continue;
    }
    const out: PostLoadFailure[] = [];
    for (const blob of FW_CFG_ACPI_BLOBS) {
      const size = uintField(sub.node, blob.field);
      if (size === undefined) continue;
      const page = BigInt(HOST_PAGE_SIZE);
      const aligned = ((size + page - 1n) / page) * page;
      if (aligned <= BigInt(blob.maxLength)) continue;
      out.push({
        at: at + header + (fieldAt(sub.node, blob.field) ?? 0),
        message: `${FW_CFG_ACPI_MR_SUBSECTION} ${blob.field} 0x${size.toString(16)}: resizing ${blob.ramBlock} to it fails (its maximum is 0x${blob.maxLength.toString(16)}), and QEMU aborts (error_abort in fw_cfg's post_load)`,
      });
    }
    return out;
  }
  return [];
}
