/**
 * Eigenvalues and eigenvectors of a small dense symmetric matrix, in JS: Householder
 * tridiagonalization (lower triangle only, 4/3·n³ flops), all eigenvalues by root-free QL, the
 * wanted eigenvectors of the tridiagonal by inverse iteration (O(n) per vector and step, instead of
 * the 6·n³ of accumulating QL rotations), then the reflectors applied back (2·n² per vector).
 * Meant for the cores of randomized SVDs (n up to several hundred).
 */
import { makeReflector } from './householder';
import type { StepClock } from './progress';
import { tridiagonalEigenvalues } from './tridiagonal-eigenvalues';
import { tridiagonalEigenvectors } from './tridiagonal-eigenvectors';

export interface SymmetricEigen {
  /** Descending. */
  values: Float64Array;
  /** Eigenvectors as rows: row i (length n) belongs to values[i]. */
  vectors: Float64Array;
  n: number;
}

/**
 * All eigenpairs of the symmetric n×n row-major matrix `a` (lower triangle read, matrix not
 * modified). With `count`, only the eigenvectors of the `count` largest eigenvalues are formed.
 */
export async function symmetricEigen(
  a: Float64Array,
  n: number,
  count = n,
  clock?: StepClock,
): Promise<SymmetricEigen> {
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) w[i * n + j] = a[i * n + j]!;
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  await tridiagonalizeLower(w, n, d, e, tau, clock);
  const off = e.subarray(0, Math.max(0, n - 1));
  const values = await tridiagonalEigenvalues(d, off, clock);
  const k = Math.min(count, n);
  const vectors = await tridiagonalEigenvectors(d, off, values.subarray(0, k), clock);
  await applyReflectorsBack(w, n, tau, vectors, k, clock);
  return { values, vectors, n };
}

/**
 * Reduces the lower triangle of `w` to tridiagonal form. Reflector k (acting on indices k+1..)
 * is left in row k+1.. of column k — stored, since only the lower triangle is used, in w[i·n+k]
 * for i > k — with τ_k in tau[k].
 */
async function tridiagonalizeLower(
  w: Float64Array,
  n: number,
  d: Float64Array,
  e: Float64Array,
  tau: Float64Array,
  clock?: StepClock,
): Promise<void> {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  const beta = new Float64Array(1);
  for (let k = 0; k < n - 1; k++) {
    const m = n - k - 1;
    for (let i = 0; i < m; i++) v[i] = w[(k + 1 + i) * n + k]!;
    const t = makeReflector(v, 0, m, 1, beta);
    tau[k] = t;
    e[k] = beta[0]!;
    for (let i = 0; i < m; i++) w[(k + 1 + i) * n + k] = v[i]!;
    if (t !== 0) {
      // p = τ·A22·v from the lower triangle of A22 (rows are contiguous).
      p.fill(0, 0, m);
      for (let i = 0; i < m; i++) {
        const row = (k + 1 + i) * n + k + 1;
        const vi = v[i]!;
        let s = 0;
        for (let j = 0; j < i; j++) {
          const x = w[row + j]!;
          s += x * v[j]!;
          p[j] = p[j]! + x * vi;
        }
        p[i] = p[i]! + s + w[row + i]! * vi;
      }
      let pv = 0;
      for (let i = 0; i < m; i++) {
        p[i] = t * p[i]!;
        pv += p[i]! * v[i]!;
      }
      const alpha = -0.5 * t * pv;
      for (let i = 0; i < m; i++) p[i] = p[i]! + alpha * v[i]!;
      // A22 ← A22 − v·pᵀ − p·vᵀ on the lower triangle.
      for (let i = 0; i < m; i++) {
        const row = (k + 1 + i) * n + k + 1;
        const vi = v[i]!;
        const pi = p[i]!;
        for (let j = 0; j <= i; j++) w[row + j] = w[row + j]! - vi * p[j]! - pi * v[j]!;
      }
    }
    if (clock && (k & 31) === 31) await clock.tick();
  }
  for (let k = 0; k < n; k++) d[k] = w[k * n + k]!;
  e[n - 1] = 0;
}

/** rows ← Q·row for each of the k vectors, Q = H₀·H₁·…, reflectors as left by tridiagonalizeLower. */
async function applyReflectorsBack(
  w: Float64Array,
  n: number,
  tau: Float64Array,
  rows: Float64Array,
  k: number,
  clock?: StepClock,
): Promise<void> {
  const v = new Float64Array(n);
  for (let j = n - 2; j >= 0; j--) {
    const t = tau[j]!;
    if (t === 0) continue;
    const m = n - j - 1;
    for (let i = 0; i < m; i++) v[i] = w[(j + 1 + i) * n + j]!;
    for (let r = 0; r < k; r++) {
      const base = r * n + j + 1;
      let s = 0;
      for (let i = 0; i < m; i++) s += v[i]! * rows[base + i]!;
      s *= t;
      for (let i = 0; i < m; i++) rows[base + i] = rows[base + i]! - s * v[i]!;
    }
    if (clock && (j & 15) === 0) await clock.tick();
  }
}
