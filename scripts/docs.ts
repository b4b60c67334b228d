// npm run docs: regenerate the documents made from grammar/ and schema tables.
import { mkdirSync, writeFileSync } from 'node:fs';
import { renderRulesDoc } from '../src/formats/rules-doc.js';
import { MODEL_SCHEMA } from '../src/generator/model-schema.js';
import { SCENARIO_SCHEMA } from '../src/generator/scenario-schema.js';

writeFileSync(new URL('../../docs/validate-rules.md', import.meta.url), renderRulesDoc());
mkdirSync(new URL('../../schemas/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../../schemas/migstream-model.schema.json', import.meta.url),
  JSON.stringify(MODEL_SCHEMA, null, 2) + '\n',
);
writeFileSync(
  new URL('../../schemas/migstream-scenario.schema.json', import.meta.url),
  JSON.stringify(SCENARIO_SCHEMA, null, 2) + '\n',
);
