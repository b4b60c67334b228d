/**
 * The JSON Schema of a VFIO scenario (generator/scenario.ts), as data: `gen` checks every
 * scenario against it before building, and `npm run docs` writes it to
 * schemas/migstream-scenario.schema.json (a test keeps the two equal).
 */
import { MIGRATION_CAPABILITIES } from '../../grammar/capabilities.js';
import { VfioTag } from '../../grammar/vfio.js';

const nonNegative = { type: 'integer', minimum: 0 } as const;
const sizes = { type: 'array', items: nonNegative } as const;
const tagName = { enum: Object.keys(VfioTag) } as const;

const recordMatch = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  description:
    'the record a mutation edits: its kind, and optionally its VFIO tag, RAM op or section type; nth match (0-based)',
  properties: {
    kind: { type: 'string' },
    tag: tagName,
    op: { type: 'string' },
    section: { enum: ['START', 'PART', 'END', 'FULL'] },
    nth: nonNegative,
  },
} as const;

const MULTIFD_MUTATIONS = [
  'multifdDuplicateIdx',
  'multifdDropIdx',
  'multifdVersion',
  'multifdInvalidIdx',
  'multifdMoveConfigFirst',
  'multifdConfigFlag',
  'multifdRenameDevice',
  'multifdSyncDeviceState',
  'multifdUnterminatedIdstr',
] as const;

// the `op` chooses the branch (ajv's discriminator), so a mistake is reported against that op's fields only
const mutation = {
  type: 'object',
  required: ['op'],
  discriminator: { propertyName: 'op' },
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'match'],
      properties: { op: { const: 'drop' }, match: recordMatch },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'match', 'tag'],
      properties: {
        op: { enum: ['replaceTag', 'insertTagAfter'] },
        match: recordMatch,
        // a tag QEMU names, or any 64-bit value (an unknown tag on purpose)
        tag: { anyOf: [tagName, { type: 'string', pattern: '^0x[0-9a-fA-F]{1,16}$' }] },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op', 'value'],
      properties: { op: { const: 'setIrqState' }, value: nonNegative },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['op'],
      properties: {
        op: { enum: MULTIFD_MUTATIONS },
        index: { ...nonNegative, description: 'which device-state buffer, in idx order (default 0)' },
      },
    },
  ],
} as const;

const vfioDevice = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'qdev path; the section idstr is "<path>/vfio"' },
    protocol: { enum: ['v1', 'v2'], description: 'v1: QEMU <= 7.2 migration region; v2: 8.0+' },
    precopy: { ...sizes, description: 'v2: bytes read in each precopy iteration; empty: no PRE_COPY support' },
    initialBytes: { ...nonNegative, description: 'initial data: DEV_INIT_DATA_SENT follows once all were sent' },
    stopCopy: { ...sizes, description: 'bytes of each stop-copy read at switchover' },
    multifd: { type: 'boolean', description: 'the switchover state goes over multifd channels (10.0+)' },
    loadConfigAfterIter: { type: 'boolean', description: '10.1+: x-migration-load-config-after-iter=on' },
    config: {
      type: 'object',
      additionalProperties: false,
      properties: { express: { type: 'boolean' }, msixVectors: nonNegative, display: { type: 'boolean' } },
    },
  },
} as const;

export const SCENARIO_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://migstream.invalid/schemas/migstream-scenario.schema.json',
  title: 'migstream VFIO scenario',
  description:
    'A migration with VFIO devices described by the settings that shape the wire; `migstream gen` builds the stream (and multifd channels) QEMU would write, then applies the mutations.',
  type: 'object',
  additionalProperties: false,
  required: ['qemu'],
  properties: {
    qemu: {
      type: 'string',
      pattern: '^[0-9]+\\.[0-9]+$',
      description: 'the QEMU release whose behaviour to model, X.Y',
    },
    machine: { type: 'string', minLength: 1 },
    capabilities: { type: 'array', items: { enum: MIGRATION_CAPABILITIES }, uniqueItems: true },
    ramBytes: nonNegative,
    iterations: nonNegative,
    multifdChannels: { type: 'integer', minimum: 1 },
    vfio: { type: 'array', items: vfioDevice },
    seed: { type: 'integer' },
    mutations: { type: 'array', items: mutation },
  },
} as const;
