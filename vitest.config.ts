import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // Test files start servers; two cores: run files two at a time.
    maxWorkers: 2,
    pool: 'forks',
  },
});
