import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // Test files start servers; two cores: run files two at a time.
    maxWorkers: 2,
    pool: 'forks',
    // The stacks tests start run the AWS SDK in-process: its Node-version warning is noise (its documented opt-out).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
