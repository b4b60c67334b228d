import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.mutation.config.js';

// The codec run (stryker.codec.config.json): the suites of vitest.mutation.config.ts less those
// that regenerate or re-decode every recording for each mutant they cover. The RAM reader and
// the framing are on every recording's path, so each of their ~600 mutants ran model.test.ts
// (40 recordings through the save engine) for minutes: a run did not finish in a session.
// The codec's own suites (codec-paths, codec-scanners, roundtrip, golden, malformed, the rule
// pairs) still run against every mutant.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [
        ...(base.test?.exclude ?? []),
        'test/model.test.ts',
        'test/model-property.test.ts',
        'test/decode-api.test.ts',
        'test/docs.test.ts',
      ],
    },
  }),
);
