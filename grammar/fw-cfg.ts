/**
 * fw_cfg's "fw_cfg/acpi_mr" subsection (hw/nvram/fw_cfg.c, vmstate_fw_cfg_acpi_mr): the sizes of
 * the three ACPI blobs the source's firmware saw. Its post_load resizes each blob's RAMBlock to
 * the size given, with error_abort, so a size past the block's maximum aborts the destination.
 * The maximum is fixed where the blob is added (hw/acpi/utils.c acpi_add_rom_blob): 2 MiB for
 * the tables, 64 KiB for the linker/loader script, and the blob's own length, rounded up to a
 * host page, for the RSDP (rom_add_blob with no maximum). qemu_ram_resize rounds the new size
 * up to a host page before it compares.
 */
export const FW_CFG_IDSTR = 'fw_cfg';
export const FW_CFG_ACPI_MR_SUBSECTION = 'fw_cfg/acpi_mr';
/** x86 hosts: HOST_PAGE_ALIGN rounds to 4 KiB */
export const HOST_PAGE_SIZE = 4096;

export interface AcpiBlobLimit {
  /** the subsection's field holding the blob's size */
  field: string;
  /** the RAMBlock the blob lives in */
  ramBlock: string;
  /** its max_length: the largest size it can be resized to */
  maxLength: number;
}

export const FW_CFG_ACPI_BLOBS: readonly AcpiBlobLimit[] = [
  { field: 'table_mr_size', ramBlock: '/rom@etc/acpi/tables', maxLength: 0x200000 },
  { field: 'linker_mr_size', ramBlock: '/rom@etc/table-loader', maxLength: 0x10000 },
  // the RSDP is 20 or 36 bytes: one page
  { field: 'rsdp_mr_size', ramBlock: '/rom@etc/acpi/rsdp', maxLength: HOST_PAGE_SIZE },
];

/**
 * RAMBlocks of fw_cfg ROM blobs (hw/core/loader.c rom_set_mr) are named "/rom@" and the blob's
 * fw_cfg file name, and are resizeable: the destination's ram_load resizes them to the length
 * the source's MEM_SIZE entry gives (qemu_ram_resize), up to their max_length. Every other
 * RAMBlock must have that length already.
 */
export const FW_CFG_ROM_BLOCK_PREFIX = '/rom@';

/**
 * The max_length of a fw_cfg ROM blob's RAMBlock whose length on the destination is
 * `ownLength`: the ACPI blobs' fixed maxima, else the blob's own length (rom_add_blob or
 * rom_add_file with no maximum), both rounded up to a host page as qemu_ram_alloc_resizeable does.
 */
export function fwCfgRomMaxLength(ramBlock: string, ownLength: number): number {
  return hostPageAlign(FW_CFG_ACPI_BLOBS.find((b) => b.ramBlock === ramBlock)?.maxLength ?? ownLength);
}

/** `n` rounded up to a host page (HOST_PAGE_ALIGN), as qemu_ram_resize rounds a new length. */
export function hostPageAlign(n: number): number {
  return Math.ceil(n / HOST_PAGE_SIZE) * HOST_PAGE_SIZE;
}
