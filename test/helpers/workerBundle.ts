/**
 * Bundles the worker and CLI entries with esbuild for tests, exactly as the product build does, so
 * tests exercise the real bundles rather than a TypeScript loader hook. Bundles go to a git-ignored
 * folder inside the repository so that `require('onnxruntime-node')` resolves as it does from dist/.
 */
import { buildSync } from 'esbuild';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');
let outdir: string | undefined;

function bundles(): string {
  if (outdir) return outdir;
  mkdirSync(join(root, '.cache'), { recursive: true });
  const dir = mkdtempSync(join(root, '.cache', 'test-bundles-'));
  buildSync({
    entryPoints: {
      worker: join(root, 'src/worker/main.ts'),
      'eigen-helper': join(root, 'src/worker/eigenHelper.ts'),
      cli: join(root, 'src/cli/main.ts'),
    },
    outdir: dir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['onnxruntime-node'],
    logLevel: 'error',
  });
  outdir = dir;
  return dir;
}

export function workerScript(): string {
  return join(bundles(), 'worker.js');
}

export function cliScript(): string {
  return join(bundles(), 'cli.js');
}
