import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tridiagonalEigenvalues, eigenvalues2x2 } from '../../../src/engine/linalg/tridiagonal-eigenvalues';
import { tridiagonalEigenvectors } from '../../../src/engine/linalg/tridiagonal-eigenvectors';
import { jacobiEigenvalues, maxAbsDiff } from './helpers';
import { mulberry32 } from '../../../src/engine/random';

function dense(d: Float64Array, e: Float64Array) {
  const n = d.length;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = d[i]!;
  for (let i = 0; i < n - 1; i++) a[i * n + i + 1] = a[(i + 1) * n + i] = e[i]!;
  return { data: a, rows: n, cols: n };
}

test('the 1-D Laplacian has eigenvalues 2 − 2cos(kπ/(n+1))', async () => {
  for (const n of [1, 2, 3, 50, 501]) {
    const d = new Float64Array(n).fill(2);
    const e = new Float64Array(Math.max(0, n - 1)).fill(-1);
    const ev = await tridiagonalEigenvalues(d, e);
    const exact = Float64Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((n - k) * Math.PI) / (n + 1)));
    assert.ok(maxAbsDiff(ev, exact) < 1e-13, `n = ${n}`);
  }
});

test('splits at zero off-diagonals and keeps the inputs intact', async () => {
  const d = Float64Array.from([3, 1, -2, 5, 0.5]);
  const e = Float64Array.from([0, 1e-3, 0, 2]);
  const ev = await tridiagonalEigenvalues(d, e);
  assert.deepEqual([...d], [3, 1, -2, 5, 0.5]);
  assert.deepEqual([...e], [0, 1e-3, 0, 2]);
  assert.ok(maxAbsDiff(ev, jacobiEigenvalues(dense(d, e))) < 1e-14);
});

test('random and graded tridiagonals match Jacobi and keep the trace', async () => {
  const rand = mulberry32(7);
  for (const graded of [false, true]) {
    const n = 80;
    const d = Float64Array.from({ length: n }, (_, i) => (rand() - 0.5) * (graded ? 10 ** (-i / 8) : 1));
    const e = Float64Array.from({ length: n - 1 }, (_, i) => (rand() - 0.5) * (graded ? 10 ** (-i / 8) : 1));
    const ev = await tridiagonalEigenvalues(d, e);
    const ref = jacobiEigenvalues(dense(d, e));
    assert.ok(maxAbsDiff(ev, ref) < 1e-13, `graded = ${graded}: ${maxAbsDiff(ev, ref)}`);
    const trace = d.reduce((s, x) => s + x, 0);
    assert.ok(Math.abs(ev.reduce((s, x) => s + x, 0) - trace) < 1e-13);
  }
});

test('2×2 eigenvalues avoid cancellation', () => {
  const [a, b] = eigenvalues2x2(1e8, 1, 1e-8);
  assert.ok(Math.abs(a - 1e8) < 1e-6);
  // det = 1 − 1 = 0 in exact arithmetic: the small root must come out (almost) exactly zero
  assert.ok(Math.abs(b) < 1e-15 * 1e8);
  const [c, dd] = eigenvalues2x2(2, 1, 2);
  assert.ok(Math.abs(c - 3) < 1e-15 && Math.abs(dd - 1) < 1e-15);
});

test('inverse iteration gives orthonormal eigenvectors, also for clusters', async () => {
  // Wilkinson W⁺₂₁ has pairs of eigenvalues agreeing to ~1e-14: a hard cluster case.
  const n = 21;
  const d = Float64Array.from({ length: n }, (_, i) => Math.abs(10 - i));
  const e = new Float64Array(n - 1).fill(1);
  const ev = await tridiagonalEigenvalues(d, e);
  const vecs = await tridiagonalEigenvectors(d, e, ev);
  const a = dense(d, e);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += a.data[i * n + j]! * vecs[r * n + j]!;
      assert.ok(Math.abs(s - ev[r]! * vecs[r * n + i]!) < 1e-13, 'residual');
    }
    for (let q = 0; q <= r; q++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += vecs[r * n + j]! * vecs[q * n + j]!;
      assert.ok(Math.abs(s - (q === r ? 1 : 0)) < 1e-10, `orthogonality ${r},${q}: ${s}`);
    }
  }
});
