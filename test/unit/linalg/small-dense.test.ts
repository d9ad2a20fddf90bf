import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeReflector } from '../../../src/engine/linalg/householder';
import { orthonormalize, householderQr } from '../../../src/engine/linalg/orthonormalize';
import { compactWyFactor, panelQr } from '../../../src/engine/linalg/panel-qr';
import { symmetricEigen } from '../../../src/engine/linalg/symmetric-eigen';
import {
  gaussianMatrix,
  jacobiEigenvalues,
  maxAbs,
  maxAbsDiff,
  multiply,
  orthonormalityError,
  symmetricRandom,
} from './helpers';
import { matrixF64, referenceEigenvalues } from './fixtures';

test('a reflector maps x onto β·e₁ and is orthogonal', () => {
  const x = Float64Array.from([3, 1, -2, 5]);
  const v = Float64Array.from(x);
  const beta = new Float64Array(1);
  const tau = makeReflector(v, 0, 4, 1, beta);
  const vx = v.reduce((s, vi, i) => s + vi * x[i]!, 0);
  const hx = Array.from(x, (xi, i) => xi - tau * v[i]! * vx);
  assert.ok(Math.abs(hx[0]! - beta[0]!) < 1e-14 && Math.abs(Math.abs(beta[0]!) - Math.sqrt(39)) < 1e-14);
  for (let i = 1; i < 4; i++) assert.ok(Math.abs(hx[i]!) < 1e-14);
  // Already reduced: τ = 0.
  const e = Float64Array.from([2, 0, 0]);
  assert.equal(makeReflector(e, 0, 3, 1, beta), 0);
  assert.equal(beta[0], 2);
});

test('panel QR with its compact WY factor reproduces the panel', () => {
  const m = 40;
  const k = 7;
  const p = gaussianMatrix(m, k, 1);
  const a = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) a[j * m + i] = p.data[i * k + j]!;
  const qr = panelQr(a, m, k, new Float64Array(k), new Float64Array(k));
  const t = new Float64Array(k * k);
  compactWyFactor(a, m, qr, t);
  // Q = I − V·T·Vᵀ, R from the panel; check Q·R = P.
  const v = new Float64Array(m * k);
  for (let j = 0; j < k; j++) for (let i = j; i < m; i++) v[i * k + j] = i === j ? 1 : a[j * m + i]!;
  const vm = { data: v, rows: m, cols: k };
  const vt = multiply(vm, { data: t, rows: k, cols: k });
  const q = multiply(vt, vm, false, true);
  for (let i = 0; i < m * m; i++) q.data[i] = (i % (m + 1) === 0 ? 1 : 0) - q.data[i]!;
  const r = new Float64Array(m * k);
  for (let j = 0; j < k; j++) for (let i = 0; i <= j; i++) r[i * k + j] = i === j ? qr.rdiag[j]! : a[j * m + i]!;
  const qrp = multiply(q, { data: r, rows: m, cols: k });
  assert.ok(maxAbsDiff(qrp.data, p.data) < 1e-13);
  assert.ok(orthonormalityError(q) < 1e-14);
});

test('symmetricEigen: eigenpairs of the numpy fixture, orthonormal vectors, partial count', async () => {
  const a = matrixF64('symmetric_130');
  const ref = referenceEigenvalues('symmetric_130');
  const all = await symmetricEigen(a.data, a.rows);
  assert.ok(maxAbsDiff(all.values, ref) < 1e-12);
  const n = a.rows;
  const v = { data: new Float64Array(n * n), rows: n, cols: n };
  for (let r = 0; r < n; r++) for (let i = 0; i < n; i++) v.data[i * n + r] = all.vectors[r * n + i]!;
  assert.ok(orthonormalityError(v) < 1e-12);
  const av = multiply(a, v);
  for (let r = 0; r < n; r++)
    for (let i = 0; i < n; i++) assert.ok(Math.abs(av.data[i * n + r]! - all.values[r]! * v.data[i * n + r]!) < 1e-12);
  const top = await symmetricEigen(a.data, n, 5);
  assert.equal(top.vectors.length, 5 * n);
  for (let i = 0; i < 5 * n; i++) assert.ok(Math.abs(Math.abs(top.vectors[i]!) - Math.abs(all.vectors[i]!)) < 1e-10);
});

test('symmetricEigen handles repeated eigenvalues and the zero matrix', async () => {
  const n = 30;
  const q = (await orthonormalize(gaussianMatrix(n, n, 4))).q;
  const lam = Float64Array.from({ length: n }, (_, i) => Math.floor(i / 10));
  const ql = { data: Float64Array.from(q.data, (x, i) => x * lam[i % n]!), rows: n, cols: n };
  const a = multiply(ql, q, false, true);
  const e = await symmetricEigen(a.data, n);
  assert.ok(maxAbsDiff(e.values, Float64Array.from(lam).sort().reverse()) < 1e-13);
  const v = { data: new Float64Array(n * n), rows: n, cols: n };
  for (let r = 0; r < n; r++) for (let i = 0; i < n; i++) v.data[i * n + r] = e.vectors[r * n + i]!;
  assert.ok(orthonormalityError(v) < 1e-12);
  const z = await symmetricEigen(new Float64Array(16), 4);
  assert.deepEqual([...z.values], [0, 0, 0, 0]);
  const sym = symmetricRandom(25, 2);
  assert.ok(maxAbsDiff((await symmetricEigen(sym.data, 25)).values, jacobiEigenvalues(sym)) < 1e-13);
});

test('orthonormalize: CholeskyQR2, ill-conditioned and rank-deficient blocks', async () => {
  const y = gaussianMatrix(500, 40, 1);
  const { q, r } = await orthonormalize(y);
  assert.ok(orthonormalityError(q) < 1e-13);
  assert.ok(maxAbsDiff(multiply(q, { data: r, rows: 40, cols: 40 }).data, y.data) < 1e-12);
  // Columns scaled over 12 orders of magnitude: plain CholeskyQR fails, the shifted variant not.
  const bad = { data: Float64Array.from(y.data, (x, i) => x * 10 ** (-(i % 40) * 0.3)), rows: 500, cols: 40 };
  const b = await orthonormalize(bad);
  assert.ok(orthonormalityError(b.q) < 1e-12);
  assert.ok(maxAbsDiff(multiply(b.q, { data: b.r, rows: 40, cols: 40 }).data, bad.data) < 1e-12 * maxAbs(bad.data));
  // Exactly rank 2: Householder fallback.
  const low = multiply(gaussianMatrix(100, 2, 5), gaussianMatrix(2, 6, 6));
  const c = await orthonormalize(low);
  assert.ok(orthonormalityError(c.q) < 1e-13);
  assert.ok(maxAbsDiff(multiply(c.q, { data: c.r, rows: 6, cols: 6 }).data, low.data) < 1e-12);
  const h = householderQr(y);
  assert.ok(orthonormalityError(h.q) < 1e-13);
  await assert.rejects(() => orthonormalize(gaussianMatrix(3, 5, 1)), /rows/);
});
