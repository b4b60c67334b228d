// npm run docs: regenerate the documents made from grammar/ tables.
import { writeFileSync } from 'node:fs';
import { renderRulesDoc } from '../src/formats/rules-doc.js';

writeFileSync(new URL('../../docs/validate-rules.md', import.meta.url), renderRulesDoc());
