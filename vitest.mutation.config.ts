import { defineConfig } from 'vitest/config';

// The suite Stryker runs against each mutant: the in-process tests only. The CLI and QEMU
// tests spawn bin/migstream or QEMU, which run dist/, not the mutated sources. The lying-length
// and fuzz suites are left out too: they run the whole loader thousands of times (13 s and 5 s)
// for every mutant they cover, for robustness that the rule pairs and goldens do not measure.
export default defineConfig({
  test: {
    // instrumented for per-test coverage, the model suites take minutes on a shared 2-core machine
    testTimeout: 300_000,
    // the tests that start QEMU skip themselves (test/helpers.ts): each would start it again for
    // every mutant its in-process part covers
    env: { MIGSTREAM_TEST_NO_QEMU: '1' },
    include: ['test/**/*.test.ts'],
    exclude: [
      'test/cli.test.ts',
      'test/qemu.test.ts',
      'test/lying-lengths.test.ts',
      'test/fuzz.test.ts',
      // these only spawn bin/migstream (the unmutated dist/)
      'test/analyze-cli.test.ts',
      'test/color.test.ts',
      'test/input-kinds.test.ts',
      'test/cli-help.test.ts',
      'test/progress.test.ts',
      'test/ci-reports.test.ts',
      'test/package.test.ts',
    ],
  },
});
