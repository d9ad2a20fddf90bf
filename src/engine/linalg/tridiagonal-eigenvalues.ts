/**
 * All eigenvalues of a symmetric tridiagonal matrix by the root-free QL iteration of Pal, Walker
 * and Kahan (the method of LAPACK's dsterf): it works on squared off-diagonals, so one sweep costs
 * about 12 flops per row and no square roots, and all n values take O(n²) time.
 */
import { StepClock } from './progress';

const EPS = 2 ** -53;
const EPS2 = EPS * EPS;
/** LAPACK's dsterf gives up after 30 QL sweeps per eigenvalue on average; so do we. */
const MAX_SWEEPS_PER_VALUE = 30;

/**
 * Eigenvalues of the tridiagonal matrix with diagonal `d` (n) and off-diagonal `e` (n − 1),
 * in descending order. Neither input is modified.
 */
export async function tridiagonalEigenvalues(
  d: Float64Array,
  e: Float64Array,
  clock?: StepClock,
): Promise<Float64Array> {
  const n = d.length;
  if (e.length < n - 1) throw new Error(`tridiagonal: ${e.length} off-diagonal entries for order ${n}`);
  const diag = Float64Array.from(d);
  const off2 = new Float64Array(Math.max(0, n - 1));
  let start = 0;
  let budget = MAX_SWEEPS_PER_VALUE * n;
  while (start < n) {
    // Split off an unreduced block [start, end]: an off-diagonal that is negligible next to the
    // geometric mean of its neighbours changes no eigenvalue by more than a rounding error.
    let end = start;
    while (end < n - 1) {
      const t = Math.abs(e[end]!);
      if (t <= Math.sqrt(Math.abs(diag[end]!)) * Math.sqrt(Math.abs(diag[end + 1]!)) * EPS) break;
      end++;
    }
    if (end > start) {
      budget = await qlBlock(diag, e, off2, start, end, budget, clock);
      if (budget < 0) throw new Error('tridiagonal eigenvalues: QL iteration did not converge');
    }
    start = end + 1;
  }
  diag.sort();
  diag.reverse();
  return diag;
}

/** Runs QL on the unreduced block [lo, hi] until every value has converged; returns the budget left. */
async function qlBlock(
  d: Float64Array,
  e: Float64Array,
  e2: Float64Array,
  lo: number,
  hi: number,
  budget: number,
  clock: StepClock | undefined,
): Promise<number> {
  // Scale the block to norm ≈ 1 so that squaring off-diagonals can neither overflow nor underflow.
  let anorm = 0;
  for (let i = lo; i <= hi; i++) anorm = Math.max(anorm, Math.abs(d[i]!));
  for (let i = lo; i < hi; i++) anorm = Math.max(anorm, Math.abs(e[i]!));
  if (anorm === 0) return budget;
  const scale = 1 / anorm;
  for (let i = lo; i <= hi; i++) d[i] = d[i]! * scale;
  for (let i = lo; i < hi; i++) {
    const t = e[i]! * scale;
    e2[i] = t * t;
  }
  // QL deflates at the top; start from the end with the larger diagonal entry at the bottom, as
  // dsterf does, by reversing the block when needed (eigenvalues are unchanged by the reversal).
  if (Math.abs(d[hi]!) < Math.abs(d[lo]!)) reverseBlock(d, e2, lo, hi);
  // Absolute floor for the deflation test: the values are wanted to eps·‖T‖ absolutely, and a
  // purely relative test can stall next to exact zero eigenvalues of a singular T.
  const absFloor = EPS2 * 1e-4;
  let l = lo;
  while (l <= hi) {
    // Find the first negligible off-diagonal at or after l.
    let m = l;
    while (m < hi) {
      const t = e2[m]!;
      if (t <= EPS2 * Math.abs(d[m]! * d[m + 1]!) || t <= absFloor) break;
      m++;
    }
    if (m < hi) e2[m] = 0;
    if (m === l) {
      l++;
      continue;
    }
    if (m === l + 1) {
      const [r1, r2] = eigenvalues2x2(d[l]!, Math.sqrt(e2[l]!), d[l + 1]!);
      d[l] = r1;
      d[l + 1] = r2;
      e2[l] = 0;
      l += 2;
      continue;
    }
    if (--budget < 0) return budget;
    qlSweep(d, e2, l, m);
    if (clock && (budget & 63) === 0) await clock.tick();
  }
  for (let i = lo; i <= hi; i++) d[i] = d[i]! * anorm;
  return budget;
}

/** One implicit QL sweep with a Wilkinson shift on [l, m], in root-free form. */
function qlSweep(d: Float64Array, e2: Float64Array, l: number, m: number): void {
  const p0 = d[l]!;
  const rte = Math.sqrt(e2[l]!);
  let sigma = (d[l + 1]! - p0) / (2 * rte);
  const r0 = Math.hypot(sigma, 1);
  sigma = p0 - rte / (sigma + (sigma >= 0 ? r0 : -r0));
  let c = 1;
  let s = 0;
  let gamma = d[m]! - sigma;
  let p = gamma * gamma;
  for (let i = m - 1; i >= l; i--) {
    const bb = e2[i]!;
    const r = p + bb;
    if (i !== m - 1) e2[i + 1] = s * r;
    const oldc = c;
    c = p / r;
    s = bb / r;
    const oldgam = gamma;
    const alpha = d[i]!;
    gamma = c * (alpha - sigma) - s * oldgam;
    d[i + 1] = oldgam + (alpha - gamma);
    p = c !== 0 ? (gamma * gamma) / c : oldc * bb;
  }
  e2[l] = s * p;
  d[l] = sigma + gamma;
}

function reverseBlock(d: Float64Array, e2: Float64Array, lo: number, hi: number): void {
  for (let i = lo, j = hi; i < j; i++, j--) {
    const t = d[i]!;
    d[i] = d[j]!;
    d[j] = t;
  }
  for (let i = lo, j = hi - 1; i < j; i++, j--) {
    const t = e2[i]!;
    e2[i] = e2[j]!;
    e2[j] = t;
  }
}

/** Eigenvalues of [[a, b], [b, c]], the larger in magnitude first, without cancellation. */
export function eigenvalues2x2(a: number, b: number, c: number): [number, number] {
  const sm = a + c;
  const df = a - c;
  const rt = Math.hypot(df, 2 * b);
  const [acmx, acmn] = Math.abs(a) > Math.abs(c) ? [a, c] : [c, a];
  if (sm === 0) return [0.5 * rt, -0.5 * rt];
  const rt1 = sm > 0 ? 0.5 * (sm + rt) : 0.5 * (sm - rt);
  // The smaller root from the determinant avoids subtracting nearly equal numbers.
  const rt2 = (acmx / rt1) * acmn - (b / rt1) * b;
  return [rt1, rt2];
}
