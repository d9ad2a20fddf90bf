/**
 * Bundles the worker entry with esbuild for tests, exactly as the product build does, so pool
 * tests exercise the real worker bundle rather than a TypeScript loader hook.
 */
import { buildSync } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let built: string | undefined;

export function workerScript(): string {
  if (built) return built;
  const outfile = join(mkdtempSync(join(tmpdir(), 'ql-worker-')), 'worker.js');
  buildSync({
    entryPoints: [join(import.meta.dirname, '../../src/worker/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['onnxruntime-node'],
    nodePaths: [join(import.meta.dirname, '../../node_modules')],
    logLevel: 'error',
  });
  built = outfile;
  return outfile;
}
