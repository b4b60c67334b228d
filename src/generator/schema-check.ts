/**
 * Models and scenarios checked against their JSON Schemas (ajv) before anything is generated,
 * so a typo ("sendSectionFooters", a capability QEMU does not have) is an error in words, not
 * a silently different stream.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { MODEL_SCHEMA } from './model-schema.js';
import { SCENARIO_SCHEMA } from './scenario-schema.js';

const ajv = new Ajv({ allErrors: true, strict: false, discriminator: true });
const compiled = new Map<object, ReturnType<Ajv['compile']>>();

function describe(e: ErrorObject): string {
  const where = e.instancePath || '(the document)';
  if (e.keyword === 'additionalProperties')
    return `${where}: unknown key ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'enum')
    return `${where}: ${e.message ?? 'not allowed'}: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  if (e.keyword === 'discriminator') {
    const p = e.params as { tag?: string; tagValue?: unknown };
    return `${where}: unknown ${p.tag ?? 'kind'} ${JSON.stringify(p.tagValue)} (the schema in schemas/ lists them)`;
  }
  return `${where}: ${e.message ?? e.keyword}`;
}

/** The problems of `doc` against `schema`, one line each; empty when it is valid. */
function problemsOf(schema: object, doc: unknown): string[] {
  let validate = compiled.get(schema);
  if (!validate) compiled.set(schema, (validate = ajv.compile(schema)));
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(describe);
}

/** The problems of a model document, one line each; empty when it is valid. */
export function checkModel(doc: unknown): string[] {
  return problemsOf(MODEL_SCHEMA, doc);
}

/** The problems of a VFIO scenario document, one line each; empty when it is valid. */
export function checkScenario(doc: unknown): string[] {
  return problemsOf(SCENARIO_SCHEMA, doc);
}
