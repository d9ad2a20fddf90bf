/** Small dense helpers and checks for the linalg tests (naive, obviously-correct JS). */
import assert from 'node:assert/strict';
import { kernels, type FloatArray, type Mat } from '../../../src/engine/linalg/kernels';
import { mulberry32 } from '../../../src/engine/random';

export function gaussianMatrix(rows: number, cols: number, seed: number): Mat<Float64Array> {
  const rand = mulberry32(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    const u = Math.max(rand(), 1e-300);
    data[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return { data, rows, cols };
}

export function symmetricRandom(n: number, seed: number): Mat<Float64Array> {
  const g = gaussianMatrix(n, n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = g.data[i * n + j]!;
  return { data: a, rows: n, cols: n };
}

/** op(A)·op(B), naively in float64. */
export function multiply(a: Mat, b: Mat, transA = false, transB = false): Mat<Float64Array> {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = transA ? a.data[p * a.cols + i]! : a.data[i * a.cols + p]!;
      if (x === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += x * (transB ? b.data[j * b.cols + p]! : b.data[p * b.cols + j]!);
    }
  }
  return { data: out, rows: m, cols: n };
}

/** op(A)·op(B) in float64 through the GEMM kernels (tested on their own in kernels.test.ts). */
export async function product(a: Mat, b: Mat, transA = false, transB = false): Promise<Mat<Float64Array>> {
  const wide = (m: Mat): Mat<Float64Array> => ({ data: Float64Array.from(m.data), rows: m.rows, cols: m.cols });
  return kernels().matmul(wide(a), wide(b), { transA, transB });
}

export function maxAbs(a: FloatArray): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** max |QᵀQ − I| for the columns of Q. */
export function orthonormalityError(q: Mat): number {
  const g = multiply(q, q, true, false);
  let m = 0;
  for (let i = 0; i < g.rows; i++)
    for (let j = 0; j < g.cols; j++) m = Math.max(m, Math.abs(g.data[i * g.cols + j]! - (i === j ? 1 : 0)));
  return m;
}

/** Checks a computed spectrum against a reference with the brief's two bounds. */
export function assertSpectrumClose(
  ours: Float64Array,
  ref: Float64Array,
  { topRelative = 1e-4, allRelativeToFirst = 1e-3, top = 64 } = {},
): { topRel: number; allAbs: number } {
  assert.equal(ours.length, ref.length, 'number of values');
  for (let i = 1; i < ours.length; i++) assert.ok(ours[i - 1]! >= ours[i]!, `not descending at ${i}`);
  let topRel = 0;
  for (let i = 0; i < Math.min(top, ref.length); i++) {
    if (ref[i]! > 0) topRel = Math.max(topRel, Math.abs(ours[i]! - ref[i]!) / ref[i]!);
  }
  const allAbs = maxAbsDiff(ours, ref) / Math.max(ref[0]!, Number.MIN_VALUE);
  assert.ok(topRel <= topRelative, `top ${top} relative error ${topRel} > ${topRelative}`);
  assert.ok(allAbs <= allRelativeToFirst, `max |Δσ|/σ₁ = ${allAbs} > ${allRelativeToFirst}`);
  return { topRel, allAbs };
}

/**
 * Cyclic Jacobi eigenvalues (slow, independent of the code under test), descending.
 */
export function jacobiEigenvalues(a: Mat<Float64Array>): Float64Array {
  const n = a.rows;
  const w = Float64Array.from(a.data);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += w[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = w[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (w[q * n + q]! - w[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = w[k * n + p]!;
          const akq = w[k * n + q]!;
          w[k * n + p] = c * akp - s * akq;
          w[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = w[p * n + k]!;
          const aqk = w[q * n + k]!;
          w[p * n + k] = c * apk - s * aqk;
          w[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  const ev = Float64Array.from({ length: n }, (_, i) => w[i * n + i]!);
  return ev.sort().reverse();
}
