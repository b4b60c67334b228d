import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // tests run real processes (the CLI, QEMU) on a 2-core machine: no 5 s default
    testTimeout: 60_000,
    include: ['test/**/*.test.ts'],
  },
});
