/**
 * The rule catalogue of the reference loader: every rule a diagnostic can name, which
 * channel it judges, its severity, what QEMU's destination does with such bytes and where
 * that fact comes from. The loader takes its rule ids from here (a typo does not compile),
 * docs/validate-rules.md is generated from this table (`npm run docs`, checked by a test),
 * and test/rule-pairs.test.ts holds one breaking input and one clean neighbour per entry.
 *
 * Sources: SM = shared/spec/savevm-main-channel.md, SMC = its corrections, VM =
 * vfio-and-multifd.md, VMV = its verification, Q = the comparison with a real QEMU 7.2
 * (test/qemu.test.ts).
 */

/** StreamError codes: a decode error ends the stream; the loader reports it as `stream/<code>`. */
export const STREAM_ERROR_CODES = [
  'truncated',
  'bad-magic',
  'bad-version',
  'unknown-section-type',
  'unknown-section-id',
  'footer-mismatch',
  'missing-footer',
  'bad-command',
  'command-length',
  'bad-ram-record',
  'bad-configuration',
  'undelimited-section',
  'bad-vmstate',
  'bad-vmdesc',
  'bad-value',
  'limit',
] as const;
export type StreamErrorCode = (typeof STREAM_ERROR_CODES)[number];

export type RuleGroup = 'stream' | 'main' | 'vfio' | 'multifd' | 'return-path' | 'cpr';
/** Whether a rule's violation makes a stream invalid (error) or is reported only (warning). */
export type RuleSeverity = 'error' | 'warning';

export interface RuleSpec {
  readonly id: string;
  readonly group: RuleGroup;
  readonly severity: RuleSeverity;
  /** what the destination does (QEMU's message where it has one) */
  readonly qemu: string;
  readonly source: string;
}

const STREAM_WHAT: Record<StreamErrorCode, string> = {
  truncated: 'the stream ends inside a record: the load fails reading it',
  'bad-magic': 'the file does not start with QEMU_VM_FILE_MAGIC ("Not a migration stream")',
  'bad-version': 'QEMU_VM_FILE_VERSION is not 3 ("Unsupported migration stream version")',
  'unknown-section-type': 'a section type byte QEMU does not know ("Unknown savevm section type")',
  'unknown-section-id': 'a PART/END section whose id no START announced ("Unknown savevm section")',
  'footer-mismatch': 'the section footer names another section id ("Mismatch in section footer")',
  'missing-footer': 'no QEMU_VM_SECTION_FOOTER byte after the section ("Missing section footer")',
  'bad-command': 'a MIG_CMD number outside the table (QEMU: "MIG_CMD 0x.. unknown (len 0x..)")',
  'command-length': 'a command whose len disagrees with its fixed length ("received command ... with bad length")',
  'bad-ram-record': 'RAM flags or a RAM record that the ram loader refuses ("Unknown combination of migration flags")',
  'bad-configuration': 'the configuration section cannot be read (vmstate_configuration)',
  'undelimited-section': 'a device section without a description whose end cannot be found',
  'bad-vmstate': 'VMState payload bytes that cannot be read as described',
  'bad-vmdesc': 'the vmdescription JSON cannot be read (other readers need it; QEMU never reads it)',
  'bad-value': 'a field value outside what its format allows',
  limit: 'a length or count beyond what any real stream has (a lying length): refused before allocating',
};

/** The rule catalogue: every check `validate` makes, with the QEMU behaviour and source behind it (docs/validate-rules.md). */
export const RULES = [
  ...STREAM_ERROR_CODES.map((code) => ({
    id: `stream/${code}` as const,
    group: 'stream' as const,
    severity: 'error' as const,
    qemu: STREAM_WHAT[code],
    source: 'SM, SMC',
  })),

  {
    id: 'savevm/configuration-missing',
    group: 'main',
    severity: 'error',
    qemu: '"Configuration section missing" (destination with send-configuration on; `--no-configuration` for off)',
    source: 'SM §1',
  },
  {
    id: 'savevm/configuration-capabilities',
    group: 'main',
    severity: 'error',
    qemu: '"Capability NAME is on, but received capability is off" (or the reverse): validated capabilities (x-ignore-shared, mapped-ram) differ between stream and `--capability`',
    source: 'SM §3, savevm.c configuration_validate_capabilities',
  },
  {
    id: 'savevm/unknown-capability',
    group: 'main',
    severity: 'error',
    qemu: '"Received unknown capability NAME": the configuration names a capability the destination\'s release does not have (mapped-ram before 9.0, a name no release has)',
    source: 'savevm.c get_capability, qapi/migration.json, Q',
  },
  {
    id: 'savevm/machine-type',
    group: 'main',
    severity: 'error',
    qemu: '"Machine type received is ...": a name no destination has, judged when no profile gives the local one: characters no machine type name has before its first NUL (a length that runs into the next record, as a rule), or a NUL first',
    source: 'SM §3, savevm.c configuration_post_load, Q',
  },
  {
    id: 'savevm/machine-type-mismatch',
    group: 'main',
    severity: 'error',
    qemu: "\"Machine type received is '...' and local is '...'\": the stream's machine type is not the destination's, compared as QEMU does, only as far as the received name goes (strncmp over its length; a NUL ends it), so a beginning of the local name passes (`--profile`, `--machine`)",
    source: 'savevm.c configuration_post_load, Q',
  },
  {
    id: 'savevm/uuid',
    group: 'main',
    severity: 'error',
    qemu: '"UUID received is ... and local is ...": the uuid subsection (validate-uuid) names another VM than the destination\'s -uuid (`--profile`, `--uuid`); a destination without -uuid only warns',
    source: 'savevm.c vmstate_uuid_post_load, Q',
  },
  {
    id: 'savevm/target-page-bits',
    group: 'main',
    severity: 'error',
    qemu: "\"Received TARGET_PAGE_BITS is ... but local is ...\": the stream's target-page-bits subsection differs from the destination's (`--profile`; an x86 machine type's is 12, profile or not)",
    source: 'savevm.c vmstate_target_page_bits, SM §3',
  },
  {
    id: 'savevm/section-footer',
    group: 'main',
    severity: 'error',
    qemu: 'a destination with send-section-footer on (the default) fails a section without its footer ("Missing section footer for ..."); one with it off (`--no-section-footer`) reads a footer byte as a section type ("Unknown savevm section type 126")',
    source: 'savevm.c check_section_footer, Q',
  },
  {
    id: 'savevm/empty-idstr',
    group: 'main',
    severity: 'error',
    qemu: '"Unable to read ID string for section N"',
    source: 'Q',
  },
  {
    id: 'savevm/unknown-section',
    group: 'main',
    severity: 'error',
    qemu: '"Unknown savevm section or instance": neither a live handler nor a device of the vmdescription (or `--vmsd`)',
    source: 'SM §2.2, Q',
  },
  {
    id: 'savevm/section-version',
    group: 'main',
    severity: 'error',
    qemu: "\"savevm: unsupported version N for 'idstr' vM\" (above the vmdescription's version, ram v4, VFIO v1)",
    source: 'SM §2.2, Q',
  },
  {
    id: 'savevm/unknown-command',
    group: 'main',
    severity: 'error',
    qemu: '"MIG_CMD 0x.. unknown (len 0x..)": a command number outside the destination\'s table (SWITCHOVER_START before 10.0 among them)',
    source: 'SM §4.1, SMC #2, savevm.c loadvm_process_command, Q',
  },
  {
    id: 'savevm/ping-without-return-path',
    group: 'main',
    severity: 'error',
    qemu: '"CMD_PING ... received with no return path"',
    source: 'SMC #4',
  },
  {
    id: 'savevm/postcopy-state',
    group: 'main',
    severity: 'error',
    qemu: '"CMD_POSTCOPY_ADVISE in wrong postcopy state (N)" (and _RAM_DISCARD, _LISTEN, _RUN): a postcopy command out of order: ADVISE once and first, DISCARD and LISTEN after it, RUN after LISTEN',
    source: 'savevm.c loadvm_postcopy_handle_advise/_ram_handle_discard/_listen/_run, Q',
  },
  {
    id: 'savevm/postcopy-advise',
    group: 'main',
    severity: 'error',
    qemu: '"RAM postcopy is disabled but have 16 byte advise" (ADVISE with page sizes, postcopy-ram off in the destination) or "... enabled but have 0 byte advise" (the reverse)',
    source: 'SMC #5, savevm.c loadvm_postcopy_handle_advise, Q',
  },
  {
    id: 'ram/offset',
    group: 'main',
    severity: 'error',
    qemu: '"Illegal RAM offset": a page at or past the block\'s used_length',
    source: 'Q',
  },
  {
    id: 'ram/unknown-block',
    group: 'main',
    severity: 'error',
    qemu: '"Unknown ramblock "...", cannot accept migration": a MEM_SIZE entry names a RAMBlock the destination does not have (`--profile`)',
    source: 'ram.c ram_load_precopy (RAM_SAVE_FLAG_MEM_SIZE), Q',
  },
  {
    id: 'ram/block-length',
    group: 'main',
    severity: 'error',
    qemu: '"Size mismatch: ..." or "Size too large: ...": a RAMBlock\'s used_length, rounded up to a host page, differs from the destination\'s, and the block cannot be resized to it: only fw_cfg ROM blobs (`/rom@...`) can, up to their maximum (ACPI tables 2 MiB, table-loader 64 KiB, any other their own length) (`--profile`)',
    source: 'ram.c ram_load_precopy, physmem.c qemu_ram_resize, hw/acpi/utils.c acpi_add_rom_blob, Q',
  },
  {
    id: 'ram/compressed-page',
    group: 'main',
    severity: 'error',
    qemu: '"decompress data failed": a COMPRESS_PAGE whose data is not one whole zlib stream that inflates to at most a page (decompress-error-check, on since 2.12)',
    source: 'ram.c do_data_decompress / qemu_uncompress_data (QEMU 7.2), Q',
  },
  {
    id: 'ram/zero-fill',
    group: 'main',
    severity: 'error',
    qemu: '"Found a zero page with value N" (8.2+)',
    source: 'SMC #40',
  },
  {
    id: 'ram/xbzrle',
    group: 'main',
    severity: 'error',
    qemu: '"Failed to load XBZRLE page - wrong compression!" (encoding byte not ENCODING_FLAG_XBZRLE) or "- decode error!" (runs that overrun the page or the data, an empty run)',
    source: 'SMC #34, Q',
  },
  {
    id: 'ram/unknown-flag',
    group: 'main',
    severity: 'error',
    qemu: '"Unknown combination of migration flags": RAM_SAVE_FLAG_MULTIFD_FLUSH (0x200) before 8.0',
    source: 'Q',
  },
  {
    id: 'vmstate/description-mismatch',
    group: 'main',
    severity: 'error',
    qemu: 'the device\'s bytes do not fit its description: QEMU\'s load of the device fails (e.g. "Missing section footer")',
    source: 'Q',
  },
  {
    id: 'vmstate/fw-cfg-acpi-size',
    group: 'main',
    severity: 'error',
    qemu: "fw_cfg's \"fw_cfg/acpi_mr\" post_load resizes each ACPI blob's RAMBlock to the size the stream names, with error_abort: a size past the block's maximum (tables 2 MiB, table-loader 64 KiB, RSDP one page) aborts the destination",
    source: 'Q (test/differential.test.ts, a xen-load-devices-state mutant), hw/nvram/fw_cfg.c, hw/acpi/utils.c',
  },
  {
    id: 'savevm/after-eof',
    group: 'main',
    severity: 'warning',
    qemu: 'the destination stops reading at QEMU_VM_EOF: a vmdescription that is cut short or unreadable does not fail the load (it breaks other readers: `--strict` reports the decode error instead)',
    source: 'SM §1, Q',
  },
  {
    id: 'migration/switchover-ack-needs-return-path',
    group: 'main',
    severity: 'error',
    qemu: 'switchover-ack is refused without return-path',
    source: 'VM §7.1',
  },

  { id: 'vfio/setup-eos', group: 'vfio', severity: 'error', qemu: '"SETUP STATE: EOS not found"', source: 'VM §5' },
  {
    id: 'vfio/config-end-flag',
    group: 'vfio',
    severity: 'error',
    qemu: '"Failed loading device config space, end flag incorrect"',
    source: 'VM §5',
  },
  {
    id: 'vfio/config-in-multifd',
    group: 'vfio',
    severity: 'error',
    qemu: '"got DEV_CONFIG_STATE in main migration channel but doing multifd transfer"',
    source: 'VM §5',
  },
  {
    id: 'vfio/unknown-tag',
    group: 'vfio',
    severity: 'error',
    qemu: '"Unknown tag" (also tags newer than `--qemu-version`: INIT_DATA_SENT < 8.1, CONFIG_LOAD_READY < 10.1)',
    source: 'VM §3, §5',
  },
  {
    id: 'vfio/init-data-sent-without-ack',
    group: 'vfio',
    severity: 'error',
    qemu: '"Received INIT_DATA_SENT but switchover ack is not used"',
    source: 'VM §5',
  },
  {
    id: 'vfio/switchover-ack-count',
    group: 'vfio',
    severity: 'error',
    qemu: '"qemu_loadvm_approve_switchover failed, err=-22": no approval pending',
    source: 'VM §7.1',
  },
  {
    id: 'vfio/switchover-ack-no-return-path',
    group: 'vfio',
    severity: 'error',
    qemu: 'the last approval sends SWITCHOVER_ACK; without OPEN_RETURN_PATH: err=-5',
    source: 'VMV fix 8',
  },
  {
    id: 'vfio/load-ready-outside-multifd',
    group: 'vfio',
    severity: 'error',
    qemu: '"got DEV_CONFIG_LOAD_READY outside multifd transfer"',
    source: 'VM §5',
  },
  {
    id: 'vfio/load-ready-disabled',
    group: 'vfio',
    severity: 'error',
    qemu: '"got DEV_CONFIG_LOAD_READY but was disabled"',
    source: 'VM §5',
  },
  {
    id: 'vfio/load-ready-duplicate',
    group: 'vfio',
    severity: 'error',
    qemu: '"duplicate DEV_CONFIG_LOAD_READY"',
    source: 'VM §5',
  },
  { id: 'vfio/irq-state', group: 'vfio', severity: 'error', qemu: '"irq state N: must be 0 or 1"', source: 'VMV #22' },
  { id: 'vfio/pci-version', group: 'vfio', severity: 'error', qemu: 'PCIDevice version_id above 2', source: 'VM §6' },

  {
    id: 'multifd/init-version',
    group: 'multifd',
    severity: 'error',
    qemu: 'MultiFDInit version is not MULTIFD_VERSION',
    source: 'VM §8.2',
  },
  {
    id: 'multifd/init-id',
    group: 'multifd',
    severity: 'error',
    qemu: 'MultiFDInit id above the channel count',
    source: 'VM §8.2',
  },
  {
    id: 'multifd/init-id-duplicate',
    group: 'multifd',
    severity: 'error',
    qemu: 'a channel id already set up',
    source: 'VM §8.2',
  },
  {
    id: 'multifd/channel-missing',
    group: 'multifd',
    severity: 'error',
    qemu: 'the destination waits for all multifd-channels connections (default 2, `--multifd-channels`): a channel id that never connects leaves the migration waiting forever (QEMU reports nothing)',
    source: 'multifd.c multifd_recv_new_channel / multifd_recv_all_channels_created, Q',
  },
  {
    id: 'multifd/channels-not-given',
    group: 'multifd',
    severity: 'warning',
    qemu: 'the multifd capability is on but no channel capture was given: the pages and device state they carry are not checked',
    source: 'VM §8',
  },
  {
    id: 'multifd/compression-assumed',
    group: 'multifd',
    severity: 'warning',
    qemu: 'the packets are compressed and `--multifd-compression` was not given: a destination with the default (none) refuses them ("flags received ... flags expected ..."); the packets\' method was assumed',
    source: 'multifd.c multifd_recv_unfill_packet, Q',
  },
  {
    id: 'multifd/init-uuid',
    group: 'multifd',
    severity: 'error',
    qemu: "MultiFDInit uuid differs from the other channels'",
    source: 'VM §8.2',
  },
  {
    id: 'multifd/packet-version',
    group: 'multifd',
    severity: 'error',
    qemu: 'packet header version is not MULTIFD_VERSION',
    source: 'VM §8.3',
  },
  {
    id: 'multifd/compression',
    group: 'multifd',
    severity: 'error',
    qemu: 'compression flags against `--multifd-compression` (or the first packet)',
    source: 'VM §8.3, Q',
  },
  {
    id: 'multifd/zstd-data',
    group: 'multifd',
    severity: 'error',
    qemu: "multifd-compression zstd: a packet's data, read as the next part of the channel's zstd stream, must decompress to exactly its normal pages; otherwise the receiving thread fails and the migration never completes (QEMU 7.2 waits)",
    source: 'VM §8.3, Q (test/differential.test.ts)',
  },
  {
    id: 'multifd/zlib-data',
    group: 'multifd',
    severity: 'error',
    qemu: "multifd-compression zlib: a packet's data, inflated (Z_SYNC_FLUSH) as the next part of the channel's zlib stream, must give exactly its normal pages; otherwise the receiving thread fails and the migration never completes (QEMU 7.2 waits)",
    source: 'VM §8.3, Q (test/differential.test.ts)',
  },
  {
    id: 'multifd/pages-alloc',
    group: 'multifd',
    severity: 'error',
    qemu: 'pages_alloc above the page count of a packet',
    source: 'VM §8.4',
  },
  {
    id: 'multifd/normal-pages',
    group: 'multifd',
    severity: 'error',
    qemu: 'normal_pages above pages_alloc',
    source: 'VM §8.4',
  },
  {
    id: 'multifd/zero-pages',
    group: 'multifd',
    severity: 'error',
    qemu: 'zero_pages above pages_alloc less normal_pages (9.0+ destinations only)',
    source: 'VM §8.4, Q',
  },
  {
    id: 'multifd/unknown-ramblock',
    group: 'multifd',
    severity: 'error',
    qemu: '"unknown ram block"',
    source: 'VM §8.4',
  },
  { id: 'multifd/offset', group: 'multifd', severity: 'error', qemu: '"offset too long"', source: 'VM §8.4' },
  {
    id: 'multifd/sync-count',
    group: 'multifd',
    severity: 'error',
    qemu: 'SYNC packets per channel against MULTIFD_FLUSH (or EOS with flush-per-section): the destination waits for every channel',
    source: 'VM §8.6',
  },
  {
    id: 'multifd/packet-num',
    group: 'multifd',
    severity: 'warning',
    qemu: 'QEMU only traces packet_num; 7.x re-sends empty packets with a stale one',
    source: 'VM §8.4, real 7.2 capture',
  },
  {
    id: 'multifd/device-state-sync',
    group: 'multifd',
    severity: 'error',
    qemu: '"received SYNC device state packet"',
    source: 'VM §8.7',
  },
  {
    id: 'multifd/device-state-empty',
    group: 'multifd',
    severity: 'error',
    qemu: '"received empty device state packet"',
    source: 'VM §8.7',
  },
  {
    id: 'multifd/device-state-idstr',
    group: 'multifd',
    severity: 'error',
    qemu: '"unterminated multifd device state idstr"',
    source: 'VM §8.7',
  },
  {
    id: 'multifd/device-state-unknown',
    group: 'multifd',
    severity: 'error',
    qemu: '"Unknown idstr ... or instance id ... for load state buffer"',
    source: 'VM §8.7',
  },
  {
    id: 'vfio/device-state-not-multifd',
    group: 'multifd',
    severity: 'error',
    qemu: '"got device state packet but not doing multifd transfer"',
    source: 'VM §9.3',
  },
  { id: 'vfio/buffer-too-short', group: 'multifd', severity: 'error', qemu: '"packet too short"', source: 'VM §9.3' },
  {
    id: 'vfio/buffer-version',
    group: 'multifd',
    severity: 'error',
    qemu: '"packet has unknown version"',
    source: 'VM §9.3',
  },
  {
    id: 'vfio/buffer-index-invalid',
    group: 'multifd',
    severity: 'error',
    qemu: '"packet index is invalid"',
    source: 'VM §9.3',
  },
  {
    id: 'vfio/buffer-duplicate',
    group: 'multifd',
    severity: 'error',
    qemu: '"state buffer N already filled" (any repeated idx)',
    source: 'VM §9.3, VMV #30',
  },
  {
    id: 'vfio/buffer-missing',
    group: 'multifd',
    severity: 'error',
    qemu: 'a gap in the buffer indexes: QEMU waits forever, with no message (reported so a CI run does not hang)',
    source: 'VMV #31',
  },
  {
    id: 'vfio/config-buffer-missing',
    group: 'multifd',
    severity: 'error',
    qemu: 'no config buffer: the load thread waits forever, with no message',
    source: 'VM §9.3',
  },
  {
    id: 'vfio/switchover-start-missing',
    group: 'multifd',
    severity: 'error',
    qemu: 'device state buffers but no MIG_CMD_SWITCHOVER_START: the load thread never starts',
    source: 'VM §9.3',
  },
  {
    id: 'vfio/load-ready-missing',
    group: 'multifd',
    severity: 'error',
    qemu: 'load-config-after-iter on but no DEV_CONFIG_LOAD_READY: the config load waits forever',
    source: 'VM §9.3',
  },
  {
    id: 'vfio/buffer-after-config',
    group: 'multifd',
    severity: 'error',
    qemu: 'a buffer after the config buffer is never loaded',
    source: 'VM §9.3',
  },
  {
    id: 'vfio/config-buffer-flag',
    group: 'multifd',
    severity: 'error',
    qemu: '"expected FLAG_DEV_CONFIG_STATE but got ..."',
    source: 'VM §9.3',
  },

  {
    id: 'return-path/pong-value',
    group: 'return-path',
    severity: 'error',
    qemu: 'a PONG echoes a value no unanswered PING sent (in postcopy the answers may come out of order: the package and the rest of the channel are read by two threads)',
    source: 'SM §4.3',
  },
  {
    id: 'return-path/pong-without-ping',
    group: 'return-path',
    severity: 'error',
    qemu: 'a PONG with no PING of the main channel left to answer',
    source: 'SM §4.3',
  },
  {
    id: 'return-path/switchover-ack-unexpected',
    group: 'return-path',
    severity: 'error',
    qemu: 'SWITCHOVER_ACK only with switchover-ack, once',
    source: 'VM §7.1',
  },
  {
    id: 'return-path/shut-not-last',
    group: 'return-path',
    severity: 'error',
    qemu: 'a message after SHUT: the source stops reading at SHUT',
    source: 'SM §4.3',
  },
  {
    id: 'return-path/shut-error',
    group: 'return-path',
    severity: 'error',
    qemu: 'SHUT with a non-zero status: the destination failed',
    source: 'SM §4.3',
  },
  {
    id: 'return-path/shut-missing',
    group: 'return-path',
    severity: 'warning',
    qemu: 'the capture ends before SHUT',
    source: 'SM §4.3',
  },
  {
    id: 'return-path/req-pages',
    group: 'return-path',
    severity: 'error',
    qemu: 'page requests only with postcopy-ram',
    source: 'SM §4.3',
  },
  {
    id: 'return-path/unknown-message',
    group: 'return-path',
    severity: 'error',
    qemu: 'a message type outside MIG_RP_MSG',
    source: 'SM §4.3',
  },

  {
    id: 'cpr/fd-name',
    group: 'cpr',
    severity: 'error',
    qemu: 'a descriptor name of no bytes, or not ending in NUL: QEMU allocates namelen bytes and finds descriptors with strcmp on them',
    source: 'migration/cpr.c (vmstate_cpr_fd, find_fd)',
  },
  {
    id: 'cpr/fd-byte',
    group: 'cpr',
    severity: 'warning',
    qemu: "the byte a descriptor travels with is not the ' ' qemu_file_put_fd sends (the loader drops it unread)",
    source: 'migration/qemu-file.c (qemu_file_put_fd)',
  },
  {
    id: 'cpr/duplicate-fd',
    group: 'cpr',
    severity: 'warning',
    qemu: 'a name and id saved twice: cpr_find_fd only ever finds the first',
    source: 'migration/cpr.c (find_fd)',
  },
  {
    id: 'cpr/trailing-bytes',
    group: 'cpr',
    severity: 'warning',
    qemu: 'bytes after the end of the fds list: CprState has nothing more, QEMU reads no further',
    source: 'migration/cpr.c (vmstate_cpr_state, cpr_state_load)',
  },
] as const satisfies readonly RuleSpec[];

/** The id of a rule of the catalogue, e.g. `ram/block-length`. */
export type RuleId = (typeof RULES)[number]['id'];

const BY_ID: ReadonlyMap<string, RuleSpec> = new Map(RULES.map((r) => [r.id, r]));

export function ruleSpec(id: RuleId): RuleSpec {
  const r = BY_ID.get(id);
  if (!r) throw new Error(`no rule ${id}`); // unreachable: ids are typed
  return r;
}

export function isRuleId(s: string): s is RuleId {
  return BY_ID.has(s);
}
