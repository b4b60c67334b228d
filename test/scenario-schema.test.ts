import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCENARIO_SCHEMA } from '../src/generator/scenario-schema.js';
import { checkScenario } from '../src/generator/schema-check.js';
import { ROOT } from './helpers.js';

describe('VFIO scenarios are checked against their JSON Schema', () => {
  it('schemas/migstream-scenario.schema.json is the schema gen checks with (npm run docs writes it)', () => {
    const file: unknown = JSON.parse(readFileSync(join(ROOT, 'schemas', 'migstream-scenario.schema.json'), 'utf8'));
    expect(file).toEqual(JSON.parse(JSON.stringify(SCENARIO_SCHEMA)));
  });

  it('every shipped scenario passes', () => {
    const dir = join(ROOT, 'fixtures', 'vfio');
    const names = readdirSync(dir).filter((n) => n.endsWith('.scenario.json'));
    expect(names.length).toBeGreaterThan(20);
    for (const n of names) expect([n, checkScenario(JSON.parse(readFileSync(join(dir, n), 'utf8')))]).toEqual([n, []]);
  });

  it('mistakes are named where they are: a misspelt key, an unknown tag, an unknown op, a bad release', () => {
    expect(
      checkScenario({
        qemu: '8',
        vfio: [{ path: '0000:00:02.0', stopcopy: [1] }],
        capabilities: ['switchover_ack'],
        mutations: [{ op: 'drop', match: { kind: 'vfio_tag', tag: 'END_OF_STATES' } }, { op: 'dropp' }],
      }),
    ).toEqual([
      '/qemu: must match pattern "^[0-9]+\\.[0-9]+$"',
      expect.stringMatching(/^\/capabilities\/0: must be equal to one of the allowed values: .*switchover-ack/),
      '/vfio/0: unknown key "stopcopy"',
      '/mutations/0/match/tag: must be equal to one of the allowed values: END_OF_STATE, DEV_CONFIG_STATE, DEV_SETUP_STATE, DEV_DATA_STATE, DEV_INIT_DATA_SENT, DEV_CONFIG_LOAD_READY',
      '/mutations/1: unknown op "dropp" (the schema in schemas/ lists them)',
    ]);
  });

  it('a tag may also be any 64-bit value (an unknown tag on purpose), but not a 65-bit one', () => {
    const doc = (tag: string) => ({
      qemu: '8.0',
      mutations: [{ op: 'replaceTag', match: { kind: 'vfio_tag' }, tag }],
    });
    expect(checkScenario(doc('0xffffffffef100007'))).toEqual([]);
    expect(checkScenario(doc('0x1ffffffffef100007')).length).toBeGreaterThan(0);
  });
});
