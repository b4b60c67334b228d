/**
 * The JSON Schema of the machine model (generator/model.ts), as data. `npm run docs` writes
 * it to schemas/migstream-model.schema.json; a test keeps the two equal. `gen` checks every
 * model against it (ajv) before generating.
 */
import { MIGRATION_CAPABILITIES } from '../../grammar/capabilities.js';
import { MULTIFD_COMPRESSION_FLAG } from '../../grammar/multifd.js';
import { VfioTag } from '../../grammar/vfio.js';

const nonNegative = { type: 'integer', minimum: 0 } as const;
const vmsd = {
  type: 'object',
  description:
    "a vmdescription entry: the device's VMStateDescription as QEMU describes it (vmsd_name, version, fields, subsections)",
  properties: {
    vmsd_name: { type: 'string' },
    version: nonNegative,
    fields: { type: 'array', items: { type: 'object', required: ['name', 'type', 'size'] } },
    subsections: { type: 'array', items: { type: 'object' } },
  },
} as const;

const span = { type: 'array', items: nonNegative, minItems: 2, maxItems: 2 } as const;
/** one VFIO section item: a tag, a DEV_DATA_STATE chunk ([offset, length] in deviceDataFile), the PCI config state */
const vfioItems = {
  type: 'array',
  items: {
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['tag'],
        properties: {
          tag: { enum: Object.keys(VfioTag).filter((t) => t !== 'DEV_DATA_STATE') },
        },
      },
      { type: 'object', additionalProperties: false, required: ['data'], properties: { data: span } },
      {
        type: 'object',
        additionalProperties: false,
        required: ['config'],
        properties: {
          config: {
            type: 'object',
            additionalProperties: false,
            required: ['pciVersion', 'config', 'irqState'],
            properties: {
              pciVersion: nonNegative,
              config: { type: 'string', pattern: '^([0-9a-fA-F]{2})*$' },
              irqState: { type: 'array', items: nonNegative },
              msixTable: { type: 'string', pattern: '^([0-9a-fA-F]{2})*$' },
              msixPba: { type: 'string', pattern: '^([0-9a-fA-F]{2})*$' },
              display: {
                type: 'object',
                additionalProperties: false,
                required: ['name', 'version', 'ramfb'],
                properties: { name: { type: 'string' }, version: nonNegative, ramfb: { type: 'string' } },
              },
            },
          },
        },
      },
    ],
  },
} as const;

const round = {
  type: 'object',
  additionalProperties: false,
  required: ['runs'],
  properties: {
    runs: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['block', 'first', 'count'],
        properties: {
          block: { ...nonNegative, description: 'index into ram.blocks' },
          first: { ...nonNegative, description: 'first page index (page = offset / target page size)' },
          count: { type: 'integer', minimum: 1 },
          as: { enum: ['xbzrle', 'compress', 'page', 'zero'] },
          encoded: { type: 'array', items: nonNegative, minItems: 2, maxItems: 2 },
          xbzrleEncoding: { type: 'integer', minimum: 0, maximum: 255 },
          fill: { type: 'integer', minimum: 0, maximum: 255 },
        },
      },
    },
    multifdFlush: { type: 'boolean' },
  },
} as const;

export const MODEL_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://migstream.invalid/schemas/migstream-model.schema.json',
  title: 'migstream machine model',
  description:
    'A machine and its migration settings, from which `migstream gen` derives the stream QEMU would write. Side files are named relative to the model file.',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'version', 'qemu', 'machine', 'settings', 'ram', 'devices'],
  properties: {
    format: { const: 'migstream-model' },
    version: { const: 1 },
    qemu: {
      type: 'string',
      pattern: '^(7\\.2|8\\.[0-2]|9\\.[0-2]|10\\.[0-2]|11\\.[0-2])$',
      description: 'QEMU release X.Y',
    },
    machine: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'targetPageSize'],
      properties: {
        type: { type: 'string', description: 'machine type, e.g. pc-i440fx-7.2' },
        uuid: { type: 'string', pattern: '^[0-9a-fA-F]{32}$' },
        targetPageSize: { enum: [4096, 8192, 16384, 65536] },
      },
    },
    settings: {
      type: 'object',
      additionalProperties: false,
      required: ['sendConfiguration', 'sendSectionFooter', 'vmdescription', 'capabilities'],
      properties: {
        sendConfiguration: { type: 'boolean' },
        sendSectionFooter: { type: 'boolean' },
        vmdescription: { type: 'boolean' },
        capabilities: {
          type: 'array',
          uniqueItems: true,
          items: { enum: MIGRATION_CAPABILITIES },
        },
        validateUuid: { type: 'boolean' },
        compressLevel: { type: 'integer', minimum: 0, maximum: 9 },
        zeroPageDetection: { enum: ['legacy', 'none'] },
      },
    },
    ram: {
      type: 'object',
      additionalProperties: false,
      required: ['sectionId', 'instanceId', 'version', 'blocks', 'iterations', 'complete'],
      properties: {
        sectionId: nonNegative,
        instanceId: nonNegative,
        version: nonNegative,
        blocks: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['idstr', 'usedLength'],
            properties: {
              idstr: { type: 'string', minLength: 1, maxLength: 255 },
              usedLength: nonNegative,
              pageSize: nonNegative,
              mrAddr: nonNegative,
              image: { type: 'string', description: "side file holding the block's memory" },
            },
          },
        },
        iterations: { type: 'array', items: round },
        complete: round,
        history: {
          type: 'array',
          items: { type: 'array', items: { type: 'integer', minimum: -1 }, minItems: 3, maxItems: 3 },
        },
        historyFile: { type: 'string' },
        encodedFile: { type: 'string' },
      },
    },
    multifd: {
      type: 'object',
      additionalProperties: false,
      required: ['compression', 'channels'],
      properties: {
        compression: { enum: Object.keys(MULTIFD_COMPRESSION_FLAG) },
        uuid: { type: 'string', pattern: '^[0-9a-fA-F]{32}$' },
        channels: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['packets'],
            properties: {
              packets: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['num'],
                  properties: {
                    num: { ...nonNegative, description: 'packet_num' },
                    sync: { type: 'boolean' },
                    block: nonNegative,
                    pages: { type: 'array', items: { type: 'array', items: nonNegative, minItems: 2, maxItems: 2 } },
                    payload: span,
                    normal: nonNegative,
                    device: {
                      type: 'object',
                      additionalProperties: false,
                      required: ['idstr', 'instanceId', 'version', 'idx', 'flags', 'data'],
                      properties: {
                        idstr: { type: 'string', maxLength: 255 },
                        instanceId: nonNegative,
                        version: nonNegative,
                        idx: nonNegative,
                        flags: nonNegative,
                        data: span,
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    iterables: {
      type: 'array',
      description:
        'iterable devices other than RAM (VFIO): the items of their START, PART (one per RAM iteration, null: none) and END sections',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['idstr', 'instanceId', 'sectionId', 'version', 'iterations'],
        properties: {
          idstr: { type: 'string', minLength: 1, maxLength: 255 },
          instanceId: nonNegative,
          sectionId: nonNegative,
          version: nonNegative,
          setup: vfioItems,
          iterations: { type: 'array', items: { oneOf: [{ type: 'null' }, vfioItems] } },
          complete: vfioItems,
        },
      },
    },
    deviceDataFile: { type: 'string' },
    devices: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['idstr', 'instanceId', 'sectionId', 'version'],
        properties: {
          idstr: { type: 'string', minLength: 1, maxLength: 255 },
          instanceId: nonNegative,
          sectionId: nonNegative,
          version: nonNegative,
          vmsd,
          state: { type: 'object', description: 'field values by name; subsections under "$subsections"' },
          payload: { type: 'string', pattern: '^([0-9a-fA-F]{2})*$' },
          vfio: vfioItems,
        },
        oneOf: [{ required: ['vmsd', 'state'] }, { required: ['payload'] }, { required: ['vfio'] }],
      },
    },
    overrides: {
      type: 'object',
      additionalProperties: false,
      properties: { vmdescription: { type: 'string' } },
    },
  },
} as const;
