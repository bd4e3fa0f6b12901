import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'dist/', '.ackd/', 'consent-ui/dist/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', fetch: 'readonly', Response: 'readonly', Request: 'readonly', document: 'readonly', window: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // ackd matches control characters on purpose: it strips and refuses them in agent input.
      'no-control-regex': 'off',
    },
  },
  {
    // The core is pure: adapters and transports depend on it, never the other way (DESIGN.md).
    files: ['lambdas/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['adapters', 'mcp', 'http', 'cli', 'consent-api', 'local', 'handlers', 'verify'].flatMap((d) => [`../${d}/**`, `../../${d}/**`]).concat(['../app.ts', '../deps.ts', '../config.ts', '../issuer.ts', '../../spire/**', '../../../spire/**', '@aws-sdk/*', '@modelcontextprotocol/*']),
              message: 'lambdas/core imports no adapter, transport or SDK: put what both sides need in the core',
            },
          ],
        },
      ],
    },
  },
);
