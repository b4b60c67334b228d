import { defineConfig } from 'vitest/config';

// The suite Stryker runs against each mutant: the in-process tests only. The CLI, QEMU and
// fuzz-command tests spawn bin/migstream or QEMU, which run dist/, not the mutated sources.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    include: ['test/**/*.test.ts'],
    exclude: ['test/cli.test.ts', 'test/qemu.test.ts', 'test/qemu-*.test.ts', 'test/cli-*.test.ts'],
  },
});
