import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernels, mat } from '../../../src/engine/linalg/kernels';

test('gemm matches a hand-computed product with transposes, alpha and beta', async () => {
  const k = new Kernels({ threads: 1 });
  const a = mat(new Float64Array([1, 2, 3, 4, 5, 6]), 2, 3);
  const b = mat(new Float64Array([1, 0, 0, 1, 1, 1]), 3, 2);
  assert.deepEqual([...(await k.matmul(a, b)).data], [4, 5, 10, 11]);
  // A·Aᵀ
  assert.deepEqual([...(await k.matmul(a, a, { transB: true })).data], [14, 32, 32, 77]);
  // Aᵀ·A is 3×3
  const ata = await k.matmul(a, a, { transA: true });
  assert.equal(ata.rows, 3);
  assert.deepEqual([...ata.data], [17, 22, 27, 22, 29, 36, 27, 36, 45]);
  // C − A·B
  const c = mat(new Float64Array([10, 10, 10, 10]), 2, 2);
  assert.deepEqual([...(await k.gemm(a, b, c, { alpha: -1 })).data], [6, 5, 0, -1]);
  // float32 path
  const a32 = mat(new Float32Array([1, 2, 3, 4]), 2, 2);
  const r32 = await k.matmul(a32, a32);
  assert.ok(r32.data instanceof Float32Array);
  assert.deepEqual([...r32.data], [7, 10, 15, 22]);
  await k.dispose();
});

test('gemm rejects mismatched inner dimensions', async () => {
  const k = new Kernels({ threads: 1 });
  const a = mat(new Float64Array(6), 2, 3);
  await assert.rejects(() => k.matmul(a, a), /inner dimensions/);
  await k.dispose();
});
