import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cholesky,
  invertLowerTriangular,
  NotPositiveDefiniteError,
  solveTriangular,
} from '../../../src/engine/linalg/cholesky';
import { gaussianMatrix, maxAbs, maxAbsDiff, product } from './helpers';
import type { Mat } from '../../../src/engine/linalg/kernels';

/** X·Xᵀ/k for a random n×k X: symmetric positive (semi)definite, like a calibration Rxx. */
async function gramOf(n: number, k: number, seed: number): Promise<Mat<Float64Array>> {
  const x = gaussianMatrix(n, k, seed);
  const g = await product(x, x, false, true);
  for (let i = 0; i < g.data.length; i++) g.data[i] = g.data[i]! / k;
  return g;
}

test('L·Lᵀ = R + δI across several block columns; L is lower triangular', async () => {
  for (const [n, ridge] of [
    [1, 0],
    [17, 0],
    [300, 1e-3],
    [420, 0],
  ] as const) {
    const r = await gramOf(n, n + 20, n);
    const l = await cholesky(r, { ridge });
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(l.data[i * n + j], 0);
    for (let i = 0; i < n; i++) assert.ok(l.data[i * n + i]! > 0);
    const llt = await product(l, l, false, true);
    for (let i = 0; i < n; i++) llt.data[i * n + i] = llt.data[i * n + i]! - ridge;
    assert.ok(maxAbsDiff(llt.data, r.data) < 1e-12 * maxAbs(r.data), `n = ${n}`);
  }
});

test('reads only the lower triangle; relativeRidge scales with the mean diagonal', async () => {
  const n = 280;
  const r = await gramOf(n, 300, 5);
  const lower = Float64Array.from(r.data);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) lower[i * n + j] = Number.NaN;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += r.data[i * n + i]!;
  const a = await cholesky({ data: lower, rows: n, cols: n }, { relativeRidge: 0.01 });
  const b = await cholesky(r, { ridge: (0.01 * trace) / n });
  assert.ok(maxAbsDiff(a.data, b.data) < 1e-12);
  await assert.rejects(() => cholesky(r, { ridge: 1, relativeRidge: 1 }), /either/);
});

test('a matrix that is not positive definite is reported with its pivot', async () => {
  const n = 300;
  // Rank 10: singular, so some pivot after the 10th is (numerically) ≤ 0 without a ridge.
  const r = await gramOf(n, 10, 8);
  r.data[290 * n + 290] = -1;
  await assert.rejects(
    () => cholesky(r),
    (e: unknown) => e instanceof NotPositiveDefiniteError && e.pivot >= 10 && e.code === 'bad-argument',
  );
  // Negative diagonal entry 290 stays fatal even with a modest ridge, and the pivot is named.
  await assert.rejects(
    () => cholesky(r, { ridge: 1e-3 }),
    (e: unknown) => e instanceof NotPositiveDefiniteError && e.pivot === 290 && /ridge/.test(e.message),
  );
  // A ridge rescues the semidefinite case.
  const psd = await gramOf(n, 10, 8);
  await assert.rejects(() => cholesky(psd), NotPositiveDefiniteError);
  await cholesky(psd, { relativeRidge: 1e-6 });
});

test('triangular solves with L and Lᵀ (the QERA factors A = L⁻ᵀ·U_k) and the inverse', async () => {
  const n = 530;
  const r = await gramOf(n, n + 50, 3);
  const l = await cholesky(r, { ridge: 1e-4 });
  const b = gaussianMatrix(n, 12, 4);
  const x = await solveTriangular(l, b);
  assert.ok(maxAbsDiff((await product(l, x)).data, b.data) < 1e-10);
  const xt = await solveTriangular(l, b, { transpose: true });
  assert.ok(maxAbsDiff((await product(l, xt, true)).data, b.data) < 1e-10);
  const inv = await invertLowerTriangular(l);
  const eye = await product(inv, l);
  for (let i = 0; i < n; i++) eye.data[i * n + i] = eye.data[i * n + i]! - 1;
  assert.ok(maxAbs(eye.data) < 1e-10);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(inv.data[i * n + j], 0);
  await assert.rejects(() => solveTriangular(l, gaussianMatrix(n - 1, 2, 1)), /rows/);
});
