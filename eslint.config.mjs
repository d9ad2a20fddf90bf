import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Node built-ins and native modules: nothing that runs in a webview may import them.
const nodeOnly = [
  'node:*',
  'fs',
  'fs/*',
  'path',
  'os',
  'child_process',
  'worker_threads',
  'crypto',
  'stream',
  'util',
  'zlib',
  'onnxruntime-node',
  'vscode',
];

// Engine modules the webviews may import: pure code with no Node API, documented as browser-safe in
// their headers. Everything else under src/engine (readers, linear algebra, onnxruntime) is not.
export const browserSafeEngine = [
  'methods/allocation',
  'methods/checkpointComparisonTypes',
  'methods/methods',
  'methods/metricsAtRank',
  'methods/stepFitTypes',
];

const layerRule = (message, ...groups) => ({ group: groups, message });

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      'out/**',
      '.cache/**',
      'test/fixtures/**',
      '.vscode-test/**',
      '**/*.py',
      // AssemblyScript (its own types and built-ins), type-checked by asc when esbuild.mjs compiles it.
      'src/engine/linalg/wasm/assembly/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { console: 'readonly', process: 'readonly', require: 'readonly', __dirname: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Build and test scripts in plain JavaScript are linted without type information.
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The engine is the bottom layer: formats, numerics, methods, calibration. It is run by the
    // worker and the CLI and must not know about either, nor about VS Code.
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'The engine must not import vscode.' }],
          patterns: [
            layerRule(
              'The engine imports nothing from shared/, worker/, extension/ or cli/: they sit above it.',
              '**/shared/**',
              '**/worker/**',
              '**/extension/**',
              '**/cli/**',
            ),
          ],
        },
      ],
    },
  },
  {
    // Worker, CLI and the shared protocol run outside the extension host.
    files: ['src/worker/**/*.ts', 'src/cli/**/*.ts', 'src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'The worker, CLI and shared code must not import vscode.' }],
          patterns: [layerRule('Only the extension host imports from src/extension.', '**/extension/**')],
        },
      ],
    },
  },
  {
    // Webviews run in a browser sandbox: no Node, no native modules, only browser-safe engine modules.
    files: ['webview/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            layerRule('Webviews run in a browser: no Node built-ins, onnxruntime or vscode.', ...nodeOnly),
            {
              regex: `src/engine/(?!(${browserSafeEngine.join('|')})$)`,
              message: `Webviews may import only the browser-safe engine modules (${browserSafeEngine.join(', ')}).`,
            },
            layerRule(
              'Webviews talk to the host through messages: no imports from extension/, worker/ or cli/.',
              '**/src/extension/**',
              '**/src/worker/**',
              '**/src/cli/**',
            ),
          ],
        },
      ],
    },
  },
);
