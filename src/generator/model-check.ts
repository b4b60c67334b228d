/**
 * A model file checked against its JSON Schema (ajv) before anything is generated, so a
 * typo ("sendSectionFooters", a capability QEMU does not have) is an error in words, not
 * a silently different stream.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { MODEL_SCHEMA } from './model-schema.js';

let validate: ReturnType<Ajv['compile']> | undefined;

function describe(e: ErrorObject): string {
  const where = e.instancePath || '(the model)';
  if (e.keyword === 'additionalProperties')
    return `${where}: unknown key ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'enum')
    return `${where}: ${e.message ?? 'not allowed'}: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${where}: ${e.message ?? e.keyword}`;
}

/** The problems of a model document, one line each; empty when it is valid. */
export function checkModel(doc: unknown): string[] {
  validate ??= new Ajv({ allErrors: true, strict: false }).compile(MODEL_SCHEMA);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(describe);
}
