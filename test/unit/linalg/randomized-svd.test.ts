import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topSingularTriplets } from '../../../src/engine/linalg/randomized-svd';
import { singularValues } from '../../../src/engine/linalg/singular-values';
import { matrixF32, referenceSingularValues } from './fixtures';
import { gaussianMatrix, maxAbsDiff, multiply, orthonormalityError } from './helpers';
import type { Mat } from '../../../src/engine/linalg/kernels';

function optimalResidual(sv: Float64Array, r: number): number {
  let tail = 0;
  for (let i = r; i < sv.length; i++) tail += sv[i]! ** 2;
  return Math.sqrt(tail);
}

function reconstructionResidual(m: Mat, u: Mat, sigma: Float64Array, vt: Mat): number {
  const r = sigma.length;
  const svt = {
    data: Float64Array.from(vt.data, (x, i) => x * sigma[Math.floor(i / vt.cols)]!),
    rows: r,
    cols: vt.cols,
  };
  const usv = multiply(u, svt);
  let s = 0;
  for (let i = 0; i < usv.data.length; i++) s += (m.data[i]! - usv.data[i]!) ** 2;
  return Math.sqrt(s);
}

test('on a noise-like (flat) spectrum the rank-r residual is within 1% of the optimum', async () => {
  const m = matrixF32('noise_256x192');
  const ref = referenceSingularValues('noise_256x192');
  for (const r of [16, 48]) {
    const t = await topSingularTriplets(m, r, { exactResidual: true });
    const opt = optimalResidual(ref, r);
    assert.ok(t.residual <= 1.01 * opt, `r = ${r}: residual ${t.residual} vs optimum ${opt}`);
    assert.ok(t.residual >= opt * (1 - 1e-6), 'cannot beat the optimum');
    // The reported residual is the true one.
    assert.ok(Math.abs(reconstructionResidual(m, t.u, t.sigma, t.vt) - t.residual) < 1e-4 * t.residual);
    assert.ok(orthonormalityError(t.u) < 1e-5, 'U orthonormal (float32)');
    assert.equal(t.u.rows, 256);
    assert.equal(t.vt.cols, 192);
    assert.ok(t.u.data instanceof Float32Array && t.vt.data instanceof Float32Array);
  }
});

test('the energy identity residual agrees with the measured one', async () => {
  const m = matrixF32('noise_120x200');
  const a = await topSingularTriplets(m, 24);
  const b = await topSingularTriplets(m, 24, { exactResidual: true });
  assert.ok(Math.abs(a.residual - b.residual) < 1e-5 * b.residual);
  assert.ok(
    Math.abs(a.frobenius ** 2 - referenceSingularValues('noise_120x200').reduce((s, x) => s + x * x, 0)) <
      1e-4 * a.frobenius ** 2,
  );
});

test('on a fast-decaying spectrum the top values are accurate and V is orthonormal', async () => {
  const m = matrixF32('decay_160x160');
  const ref = referenceSingularValues('decay_160x160');
  const t = await topSingularTriplets(m, 20);
  for (let i = 0; i < 20; i++) assert.ok(Math.abs(t.sigma[i]! - ref[i]!) < 1e-5 * ref[i]!, `σ_${i}`);
  const vt = t.vt;
  const v = { data: new Float64Array(vt.cols * 20), rows: vt.cols, cols: 20 };
  for (let i = 0; i < 20; i++) for (let j = 0; j < vt.cols; j++) v.data[j * 20 + i] = vt.data[i * vt.cols + j]!;
  assert.ok(orthonormalityError(v) < 1e-4);
  assert.ok(t.residual <= 1.0001 * optimalResidual(ref, 20) + 1e-6);
});

test('float64 input, full rank and wide shapes; deterministic for a seed', async () => {
  const m = gaussianMatrix(40, 90, 4);
  const full = await topSingularTriplets(m, 40, { exactResidual: true });
  assert.ok(full.u.data instanceof Float64Array);
  assert.ok(full.residual < 1e-10 * full.frobenius, 'rank = min(rows, cols) reconstructs M');
  const a = await topSingularTriplets(m, 7, { seed: 3 });
  const b = await topSingularTriplets(m, 7, { seed: 3 });
  assert.deepEqual(a.sigma, b.sigma);
  assert.ok(maxAbsDiff(a.u.data, b.u.data) === 0);
});

test('a start block shared with a longer draw gives the results of a draw of its own (both dtypes)', async () => {
  // The random start is kept per seed and handed out as a prefix; a call after one that drew
  // more must see exactly the numbers it would have drawn alone. Fresh seeds: nothing cached yet.
  const cases: [Mat, number][] = [
    [gaussianMatrix(50, 70, 8), 901],
    [matrixF32('noise_256x192'), 902],
  ];
  for (const [m, seed] of cases) {
    const first = await topSingularTriplets(m, 5, { seed });
    // A wider matrix of the same dtype and more directions with the same seed: a longer draw
    // replaces the kept one.
    const wide: Mat = gaussianMatrix(64, 400, 9);
    await topSingularTriplets(
      m.data instanceof Float32Array ? { ...wide, data: Float32Array.from(wide.data) } : wide,
      40,
      {
        seed,
      },
    );
    const again = await topSingularTriplets(m, 5, { seed });
    assert.deepEqual(again.sigma, first.sigma);
    assert.ok(maxAbsDiff(again.u.data, first.u.data) === 0);
    assert.ok(maxAbsDiff(again.vt.data, first.vt.data) === 0);
    // And an odd-length draw (its last normal without its pair) is a prefix too.
    const odd = await topSingularTriplets(gaussianMatrix(9, 11, 2), 3, { seed, oversampling: 0 });
    await topSingularTriplets(gaussianMatrix(30, 500, 3), 20, { seed });
    const oddAgain = await topSingularTriplets(gaussianMatrix(9, 11, 2), 3, { seed, oversampling: 0 });
    assert.deepEqual(oddAgain.sigma, odd.sigma);
  }
});

test('an exactly rank-deficient matrix still gives an orthonormal U', async () => {
  const left = gaussianMatrix(60, 3, 1);
  const right = gaussianMatrix(3, 50, 2);
  const m = multiply(left, right);
  const t = await topSingularTriplets(m, 10);
  assert.ok(orthonormalityError(t.u) < 1e-8);
  assert.ok(t.sigma[3]! < 1e-10 * t.sigma[0]!);
  assert.ok(t.residual < 1e-6 * t.frobenius);
});

test('a large sample (ℓ > 256, blocked factorizations) keeps the 1% bound', async () => {
  const g = gaussianMatrix(600, 520, 12);
  const m = { data: Float32Array.from(g.data, (x) => x - Math.round(x / 0.5) * 0.5), rows: 600, cols: 520 };
  const sv = await singularValues(m);
  const t = await topSingularTriplets(m, 200, { exactResidual: true });
  assert.equal(t.sampled, 300);
  assert.ok(t.residual <= 1.01 * optimalResidual(sv, 200), `${t.residual} vs ${optimalResidual(sv, 200)}`);
  assert.ok(orthonormalityError(t.u) < 1e-5);
});

test('rejects ranks outside 1..min(rows, cols); honours cancellation', async () => {
  const m = gaussianMatrix(10, 8, 1);
  await assert.rejects(() => topSingularTriplets(m, 9), /outside 1\.\.8/);
  await assert.rejects(() => topSingularTriplets(m, 0), /outside/);
  const ctrl = new AbortController();
  ctrl.abort();
  await assert.rejects(() => topSingularTriplets(m, 2, { signal: ctrl.signal }), { code: 'cancelled' });
});
