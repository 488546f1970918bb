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
  // One-way layers (STYLE.md §2, docs/architecture.md): the domain depends on nothing outward, use cases on the
  // domain and its ports, views on the domain, adapters on SDKs and the domain, http on use cases and views, function
  // files on hosting, http and use cases; only hosting (and dev/, test/, bench/) reaches the composition root, and
  // only adapters an Azure SDK. Relative paths are matched by the folder they name, so '../adapters/x' and
  // '../../shared/adapters/x' are both caught. Each file falls under one of these blocks (a later block's
  // no-restricted-imports would replace an earlier one's, not add to it).
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
    files: ['shared/views/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@azure/*'], message: 'Views import no Azure SDK: models in, strings out.' },
            {
              regex: '(^|/)(adapters|usecases|http|hosting)(/|$)|(^|/)(composition|config)$',
              message: 'Views import only the domain (and other views): models in, strings out.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)(usecases|http|hosting|views)(/|$)|(^|/)composition$',
              message:
                'An adapter wraps an SDK for the domain: it imports SDKs and the domain, never use cases, HTTP or hosting.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/http/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@azure/*', '!@azure/functions'],
              message: 'HTTP calls no Azure SDK; it calls use cases.',
            },
            {
              regex: '(^|/)(adapters|hosting)(/|$)|(^|/)composition$',
              message:
                'HTTP is handed its services by hosting (handler(input, context, services)); it never reaches the composition root.',
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
            {
              regex: '(^|/)adapters(/|$)|(^|/)composition$',
              message:
                'A function file calls a use case with the services it is handed, not an adapter or the composition root.',
            },
          ],
        },
      ],
    },
  },
  {
    // Everything else that ships: configuration, names, the CLI and the operators' tools.
    files: ['shared/*.ts', 'ops/**/*.ts', 'cli/**/*.ts'],
    ignores: ['shared/composition.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)hosting(/|$)|(^|/)composition$',
              message: 'Only hosting (and dev/, test/, bench/) reaches the composition root.',
            },
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
