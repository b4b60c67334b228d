/**
 * The main migration channel (QEMU migration/savevm.c, savevm.h), as data.
 * Facts: ../shared/spec/savevm-main-channel.md §1-§4 with its corrections file.
 */
import type { Layout } from './layout.js';

/** "QEVM" */
export const QEMU_VM_FILE_MAGIC = 0x5145564d;
export const QEMU_VM_FILE_VERSION = 3;
/** v2 streams: QEMU refuses them ("SaveVM v2 format is obsolete") */
export const QEMU_VM_FILE_VERSION_COMPAT = 2;

/** Top-level record type bytes (savevm.h). */
export const SectionType = {
  QEMU_VM_EOF: 0x00,
  QEMU_VM_SECTION_START: 0x01,
  QEMU_VM_SECTION_PART: 0x02,
  QEMU_VM_SECTION_END: 0x03,
  QEMU_VM_SECTION_FULL: 0x04,
  QEMU_VM_SUBSECTION: 0x05,
  QEMU_VM_VMDESCRIPTION: 0x06,
  QEMU_VM_CONFIGURATION: 0x07,
  QEMU_VM_COMMAND: 0x08,
  QEMU_VM_SECTION_FOOTER: 0x7e,
} as const;
export type SectionTypeName = keyof typeof SectionType;

export const sectionTypeName: Readonly<Record<number, SectionTypeName>> = Object.fromEntries(
  Object.entries(SectionType).map(([k, v]) => [v, k as SectionTypeName]),
);

/** Short names used in records and paths. */
export type SectionKind = 'START' | 'PART' | 'END' | 'FULL';
export const sectionKindByte: Readonly<Record<SectionKind, number>> = {
  START: SectionType.QEMU_VM_SECTION_START,
  PART: SectionType.QEMU_VM_SECTION_PART,
  END: SectionType.QEMU_VM_SECTION_END,
  FULL: SectionType.QEMU_VM_SECTION_FULL,
};

/** QEMU_VM_PING_PACKAGED_LOADED (10.2+): PING value sent inside PACKAGED when a return path exists */
export const QEMU_VM_PING_PACKAGED_LOADED = 0x42;

export const FileHeader = [
  { name: 'magic', type: 'be32', doc: 'QEMU_VM_FILE_MAGIC "QEVM"' },
  { name: 'version', type: 'be32', doc: 'QEMU_VM_FILE_VERSION' },
] as const satisfies Layout;

/** After the type byte of QEMU_VM_SECTION_START / QEMU_VM_SECTION_FULL. */
export const SectionHeaderStartFull = [
  { name: 'sectionId', type: 'be32' },
  { name: 'idstr', type: 'counted' },
  { name: 'instanceId', type: 'be32' },
  { name: 'versionId', type: 'be32' },
] as const satisfies Layout;

/** After the type byte of QEMU_VM_SECTION_PART / QEMU_VM_SECTION_END. */
export const SectionHeaderPartEnd = [{ name: 'sectionId', type: 'be32' }] as const satisfies Layout;

/** After the 0x7e byte of QEMU_VM_SECTION_FOOTER. */
export const SectionFooter = [{ name: 'sectionId', type: 'be32' }] as const satisfies Layout;

/** After the type byte of QEMU_VM_COMMAND. */
export const CommandHeader = [
  { name: 'cmd', type: 'be16' },
  { name: 'len', type: 'be16' },
] as const satisfies Layout;

/** After the type byte of QEMU_VM_VMDESCRIPTION: be32 length, then that much JSON. */
export const VmDescriptionHeader = [{ name: 'jsonLength', type: 'be32' }] as const satisfies Layout;

/**
 * MIG_CMD_* (savevm.c `mig_cmd_args`). `len` is the fixed payload length QEMU's loader
 * enforces, or undefined for variable-length commands (with their own checks).
 */
export interface MigCommand {
  readonly value: number;
  readonly name: string;
  readonly len?: number;
  /** allowed lengths for variable commands with a closed set (POSTCOPY_ADVISE: 0 or 16) */
  readonly lens?: readonly number[];
  readonly payload: Layout;
  /** minimum payload length for variable commands */
  readonly minLen?: number;
}

const PostcopyAdvise16 = [
  { name: 'ramPagesizeSummary', type: 'be64', doc: 'OR of the page sizes of the migratable RAM blocks' },
  { name: 'targetPageSize', type: 'be64' },
] as const satisfies Layout;

export const MIG_CMD: readonly MigCommand[] = [
  { value: 1, name: 'MIG_CMD_OPEN_RETURN_PATH', len: 0, payload: [] },
  { value: 2, name: 'MIG_CMD_PING', len: 4, payload: [{ name: 'value', type: 'be32' }] },
  { value: 3, name: 'MIG_CMD_POSTCOPY_ADVISE', lens: [0, 16], payload: PostcopyAdvise16 },
  { value: 4, name: 'MIG_CMD_POSTCOPY_LISTEN', len: 0, payload: [] },
  { value: 5, name: 'MIG_CMD_POSTCOPY_RUN', len: 0, payload: [] },
  {
    value: 6,
    name: 'MIG_CMD_POSTCOPY_RAM_DISCARD',
    minLen: 20,
    payload: [
      { name: 'version', type: 'u8', expect: 0 },
      { name: 'ramblock', type: 'counted' },
      { name: 'nil', type: 'u8', expect: 0 },
      {
        name: 'ranges',
        type: 'repeat-to-end',
        element: [
          { name: 'start', type: 'be64' },
          { name: 'length', type: 'be64' },
        ],
      },
    ],
  },
  { value: 7, name: 'MIG_CMD_PACKAGED', len: 4, payload: [{ name: 'blobLength', type: 'be32' }] },
  // ENABLE_COLO has no entry in QEMU's table, so its fixed length is the zero default.
  { value: 8, name: 'MIG_CMD_ENABLE_COLO', len: 0, payload: [] },
  { value: 9, name: 'MIG_CMD_POSTCOPY_RESUME', len: 0, payload: [] },
  { value: 10, name: 'MIG_CMD_RECV_BITMAP', minLen: 1, payload: [{ name: 'ramblock', type: 'counted' }] },
  { value: 11, name: 'MIG_CMD_SWITCHOVER_START', len: 0, payload: [] },
];
export const MIG_CMD_MAX = 12;
export const MIG_CMD_OPEN_RETURN_PATH = 1;
export const MIG_CMD_PING = 2;
export const MIG_CMD_POSTCOPY_ADVISE = 3;
export const MIG_CMD_POSTCOPY_LISTEN = 4;
export const MIG_CMD_POSTCOPY_RUN = 5;
export const MIG_CMD_POSTCOPY_RAM_DISCARD = 6;
export const MIG_CMD_PACKAGED = 7;
export const MIG_CMD_SWITCHOVER_START = 11;

export const migCommandByValue: ReadonlyMap<number, MigCommand> = new Map(MIG_CMD.map((c) => [c.value, c]));
export const migCommandByName: ReadonlyMap<string, MigCommand> = new Map(MIG_CMD.map((c) => [c.name, c]));

/** Size limit of a PACKAGED blob (UINT32_MAX in every version since 7.2). */
export const MAX_VM_CMD_PACKAGED_SIZE = 0xffffffff;

/**
 * The return path (destination -> source, migration.c): be16 type, be16 len, payload.
 * `len` fixed where the source checks it. RECV_BITMAP is followed, outside the message, by
 * be64 size, the little-endian bitmap and be64 RAMBLOCK_RECV_BITMAP_ENDING.
 */
export interface ReturnPathMessage {
  readonly value: number;
  readonly name: string;
  readonly len?: number;
  readonly payload: Layout;
}
export const MIG_RP_MSG: readonly ReturnPathMessage[] = [
  { value: 1, name: 'MIG_RP_MSG_SHUT', len: 4, payload: [{ name: 'status', type: 'be32' }] },
  { value: 2, name: 'MIG_RP_MSG_PONG', len: 4, payload: [{ name: 'value', type: 'be32' }] },
  {
    value: 3,
    name: 'MIG_RP_MSG_REQ_PAGES_ID',
    payload: [
      { name: 'start', type: 'be64' },
      { name: 'length', type: 'be32' },
      { name: 'ramblock', type: 'counted' },
    ],
  },
  {
    value: 4,
    name: 'MIG_RP_MSG_REQ_PAGES',
    len: 12,
    payload: [
      { name: 'start', type: 'be64' },
      { name: 'length', type: 'be32' },
    ],
  },
  { value: 5, name: 'MIG_RP_MSG_RECV_BITMAP', payload: [{ name: 'ramblock', type: 'counted' }] },
  { value: 6, name: 'MIG_RP_MSG_RESUME_ACK', len: 4, payload: [{ name: 'value', type: 'be32' }] },
  { value: 7, name: 'MIG_RP_MSG_SWITCHOVER_ACK', len: 0, payload: [] },
];
export const MIG_RP_MSG_MAX_LEN = 512;
export const MIG_RP_MSG_SHUT = 1;
export const MIG_RP_MSG_PONG = 2;
export const MIG_RP_MSG_REQ_PAGES_ID = 3;
export const MIG_RP_MSG_REQ_PAGES = 4;
export const MIG_RP_MSG_RECV_BITMAP = 5;
export const MIG_RP_MSG_SWITCHOVER_ACK = 7;
export const RAMBLOCK_RECV_BITMAP_ENDING = 0x0123456789abcdefn;
export const ReturnPathHeader = [
  { name: 'type', type: 'be16' },
  { name: 'len', type: 'be16' },
] as const satisfies Layout;
export const rpMessageByValue: ReadonlyMap<number, ReturnPathMessage> = new Map(MIG_RP_MSG.map((m) => [m.value, m]));

/** The destination's PostcopyState (migration/postcopy-ram.h), as its errors print it. */
export const PostcopyIncomingState = {
  POSTCOPY_INCOMING_NONE: 0,
  POSTCOPY_INCOMING_ADVISE: 1,
  POSTCOPY_INCOMING_DISCARD: 2,
  POSTCOPY_INCOMING_LISTENING: 3,
  POSTCOPY_INCOMING_RUNNING: 4,
  POSTCOPY_INCOMING_END: 5,
} as const;

export interface PostcopyCommandState {
  /** the name its error gives it */
  name: string;
  /** the states it is taken in; in any other: "NAME in wrong postcopy state (N)" and the load fails */
  from: readonly number[];
  /** the state it leaves (a refused command ends the load: what state it leaves then does not matter) */
  to?: number;
}

/** The postcopy commands' state checks (savevm.c loadvm_postcopy_handle_advise, _ram_handle_discard, _listen, _run). */
export const POSTCOPY_COMMAND_STATES: ReadonlyMap<number, PostcopyCommandState> = new Map([
  [
    MIG_CMD_POSTCOPY_ADVISE,
    {
      name: 'CMD_POSTCOPY_ADVISE',
      from: [PostcopyIncomingState.POSTCOPY_INCOMING_NONE],
      to: PostcopyIncomingState.POSTCOPY_INCOMING_ADVISE,
    },
  ],
  [
    MIG_CMD_POSTCOPY_RAM_DISCARD,
    {
      name: 'CMD_POSTCOPY_RAM_DISCARD',
      from: [PostcopyIncomingState.POSTCOPY_INCOMING_ADVISE, PostcopyIncomingState.POSTCOPY_INCOMING_DISCARD],
    },
  ],
  [
    MIG_CMD_POSTCOPY_LISTEN,
    {
      name: 'CMD_POSTCOPY_LISTEN',
      from: [PostcopyIncomingState.POSTCOPY_INCOMING_ADVISE, PostcopyIncomingState.POSTCOPY_INCOMING_DISCARD],
      to: PostcopyIncomingState.POSTCOPY_INCOMING_LISTENING,
    },
  ],
  [
    MIG_CMD_POSTCOPY_RUN,
    {
      name: 'CMD_POSTCOPY_RUN',
      from: [PostcopyIncomingState.POSTCOPY_INCOMING_LISTENING],
      to: PostcopyIncomingState.POSTCOPY_INCOMING_RUNNING,
    },
  ],
]);
