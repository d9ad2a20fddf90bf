/**
 * Eigenvectors of a symmetric tridiagonal matrix for given (accurate) eigenvalues, by inverse
 * iteration: factor T − λI once with partial pivoting, then a few solves from a random start.
 * Vectors whose eigenvalues (nearly) coincide are orthogonalized against each other inside each
 * iteration, which yields an orthonormal basis of their invariant subspace.
 */
import type { StepClock } from './progress';
import { mulberry32 } from '../random';

const EPS = 2 ** -52;
/** Eigenvalues closer than this (times ‖T‖) form a cluster whose vectors are orthogonalized; for
 * wider gaps inverse iteration alone keeps vectors orthogonal to about ε·‖T‖/gap ≤ 1e-10. */
const CLUSTER_GAP = 1e-5;
const MAX_ITERATIONS = 6;

/**
 * Unit eigenvectors (as rows, count × n) of the tridiagonal (d, e) for the eigenvalues `lambda`
 * (any order; equal or close values are handled as a cluster).
 */
export async function tridiagonalEigenvectors(
  d: Float64Array,
  e: Float64Array,
  lambda: Float64Array,
  clock?: StepClock,
): Promise<Float64Array> {
  const n = d.length;
  const k = lambda.length;
  const out = new Float64Array(k * n);
  if (n === 0 || k === 0) return out;
  if (n === 1) {
    out.fill(1);
    return out;
  }
  let norm = 0;
  for (let i = 0; i < n; i++) {
    norm = Math.max(norm, Math.abs(d[i]!) + (i > 0 ? Math.abs(e[i - 1]!) : 0) + (i < n - 1 ? Math.abs(e[i]!) : 0));
  }
  if (norm === 0) norm = 1;
  const lu = new TridiagonalLu(n);
  const x = new Float64Array(n);
  const rng = mulberry32(0x5eed);
  // Process in descending order so that clusters are contiguous runs.
  const order = Array.from({ length: k }, (_, i) => i).sort((a, b) => lambda[b]! - lambda[a]!);
  let clusterStart = 0;
  const gapTol = CLUSTER_GAP * norm;
  for (let idx = 0; idx < k; idx++) {
    const j = order[idx]!;
    if (idx > 0 && lambda[order[idx - 1]!]! - lambda[j]! > gapTol) clusterStart = idx;
    // Separate coincident shifts slightly so that each factorization differs, as dstein does.
    let shift = lambda[j]!;
    if (idx > clusterStart) {
      const prev = lambda[order[idx - 1]!]!;
      if (prev - shift < 10 * EPS * norm) shift = prev - 10 * EPS * norm * (idx - clusterStart);
    }
    lu.factor(d, e, shift, EPS * norm);
    for (let i = 0; i < n; i++) x[i] = rng() - 0.5;
    const target = 1 / (10 * Math.sqrt(n) * EPS);
    let extra = false;
    for (let it = 0; it < MAX_ITERATIONS; it++) {
      normalize(x);
      const grown = lu.solve(x);
      orthogonalizeAgainst(x, out, order, clusterStart, idx, n);
      if (extra) break;
      if (grown >= target) extra = true;
    }
    normalize(x);
    out.set(x, j * n);
    if (clock && (idx & 15) === 15) await clock.tick();
  }
  return out;
}

function orthogonalizeAgainst(
  x: Float64Array,
  vectors: Float64Array,
  order: number[],
  from: number,
  to: number,
  n: number,
): void {
  for (let c = from; c < to; c++) {
    const base = order[c]! * n;
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]! * vectors[base + i]!;
    for (let i = 0; i < n; i++) x[i] = x[i]! - s * vectors[base + i]!;
  }
}

function normalize(x: Float64Array): void {
  let scale = 0;
  for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]!));
  if (scale === 0 || !Number.isFinite(scale)) {
    x.fill(1);
    scale = 1;
  }
  let ss = 0;
  for (let i = 0; i < x.length; i++) {
    const t = x[i]! / scale;
    ss += t * t;
  }
  const inv = 1 / (scale * Math.sqrt(ss));
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * inv;
}

/** LU with partial pivoting of a tridiagonal T − σI (rows may swap, so U gains a second superdiagonal). */
class TridiagonalLu {
  private readonly diag: Float64Array;
  private readonly up1: Float64Array;
  private readonly up2: Float64Array;
  private readonly mult: Float64Array;
  private readonly swapped: Uint8Array;

  constructor(private readonly n: number) {
    this.diag = new Float64Array(n);
    this.up1 = new Float64Array(n);
    this.up2 = new Float64Array(n);
    this.mult = new Float64Array(n);
    this.swapped = new Uint8Array(n);
  }

  /** Factors T − σI; pivots smaller than `tiny` are replaced by `tiny` (T − σI is nearly singular on purpose). */
  factor(d: Float64Array, e: Float64Array, sigma: number, tiny: number): void {
    const { n, diag, up1, up2, mult, swapped } = this;
    for (let i = 0; i < n; i++) diag[i] = d[i]! - sigma;
    for (let i = 0; i < n - 1; i++) up1[i] = e[i]!;
    up1[n - 1] = 0;
    up2.fill(0);
    for (let i = 0; i < n - 1; i++) {
      const sub = e[i]!;
      if (Math.abs(diag[i]!) >= Math.abs(sub)) {
        swapped[i] = 0;
        if (diag[i] === 0) diag[i] = tiny;
        const l = sub / diag[i]!;
        mult[i] = l;
        diag[i + 1] = diag[i + 1]! - l * up1[i]!;
      } else {
        swapped[i] = 1;
        const l = diag[i]! / sub;
        mult[i] = l;
        diag[i] = sub;
        const t = diag[i + 1]!;
        diag[i + 1] = up1[i]! - l * t;
        up1[i] = t;
        if (i < n - 2) {
          up2[i] = up1[i + 1]!;
          up1[i + 1] = -l * up2[i]!;
        }
      }
    }
    for (let i = 0; i < n; i++) if (Math.abs(diag[i]!) < tiny) diag[i] = diag[i]! >= 0 ? tiny : -tiny;
  }

  /** Solves (T − σI)·y = x in place; returns ‖y‖∞ (the growth that signals convergence). */
  solve(x: Float64Array): number {
    const { n, diag, up1, up2, mult, swapped } = this;
    for (let i = 0; i < n - 1; i++) {
      if (swapped[i]) {
        const t = x[i]!;
        x[i] = x[i + 1]!;
        x[i + 1] = t - mult[i]! * x[i]!;
      } else x[i + 1] = x[i + 1]! - mult[i]! * x[i]!;
    }
    let big = 0;
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i]!;
      if (i < n - 1) s -= up1[i]! * x[i + 1]!;
      if (i < n - 2) s -= up2[i]! * x[i + 2]!;
      const v = s / diag[i]!;
      x[i] = v;
      big = Math.max(big, Math.abs(v));
    }
    return big;
  }
}
