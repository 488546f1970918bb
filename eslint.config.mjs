// Type-aware linting for all TypeScript sources (see STYLE.md §8).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'cli/dist/**',
      'node_modules/**',
      '.sandbox/**',
      '.package/**',
      '**/*.mjs',
      '**/*.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // node:test's describe/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', name: ['test', 'describe', 'it', 'suite'], package: 'node:test' },
          ],
        },
      ],
      '@typescript-eslint/require-await': 'off',
    },
  },
  // One-way layers (STYLE.md §2): the domain depends on nothing outward, use cases on the domain and ports,
  // function files on hosting, http and use cases; only adapters reach an Azure SDK. Relative paths are
  // matched by the folder they name, so '../adapters/x' and '../../shared/adapters/x' are both caught.
  {
    files: ['shared/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@azure/*'], message: 'The domain imports no Azure SDK; put SDK calls in an adapter.' },
            {
              regex: '(^|/)(adapters|usecases|http|hosting|views)(/|$)|(^|/)(composition|config)$',
              message:
                'The domain imports only the domain and small pure libraries; depend on a port instead.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/usecases/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@azure/*'], message: 'Use cases import no Azure SDK; reach Azure through a port.' },
            {
              regex: '(^|/)(adapters|http|hosting|views)(/|$)|(^|/)(composition|config)$',
              message:
                'Use cases depend on the domain and its ports, not on adapters, HTTP, views, configuration or the composition root.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['functions/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@azure/*', '!@azure/functions'],
              message: 'A function file calls no Azure SDK; call a use case (STYLE.md §1).',
            },
            { regex: '(^|/)adapters(/|$)', message: 'A function file calls a use case, not an adapter.' },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'dev/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
