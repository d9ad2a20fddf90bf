/**
 * Bundled next to the installed extension's dist/worker.js, this runs the engine's GEMM kernel
 * the way the worker does, so `require('onnxruntime-node')` resolves exactly as the worker's does
 * and the native binding the VSIX carries is really loaded.
 */
import { Kernels, mat } from '../../../src/engine/linalg/kernels';

async function main(): Promise<void> {
  const kernels = new Kernels({ threads: 1 });
  const c = await kernels.matmul(mat(Float32Array.of(1, 2, 3, 4), 2, 2), mat(Float32Array.of(5, 6, 7, 8), 2, 2));
  await kernels.dispose();
  process.stdout.write(
    JSON.stringify({ product: Array.from(c.data), onnxruntime: require.resolve('onnxruntime-node') }) + '\n',
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
