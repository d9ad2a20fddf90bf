/**
 * Cholesky factorization and triangular solves, with the O(n³) and O(n²k) work in GEMMs.
 *
 * QERA-exact needs any F with FᵀF = R (the minimiser of ‖F(C − E)‖ over rank-k C does not depend
 * on which), so F = Lᵀ with R + δI = L·Lᵀ replaces the matrix square root; its factors are then
 * A = F⁻¹·U_k = L⁻ᵀ·U_k, one triangular solve with k right-hand sides.
 */
import { QuantLensError } from '../errors';
import { kernels as sharedKernels, type Kernels, type Mat } from './kernels';
import { ProgressReporter, StepClock, type LinalgOptions } from './progress';

export interface CholeskyOptions extends LinalgOptions {
  /** δ added to the diagonal: the factor is of R + δI. */
  ridge?: number;
  /** Alternative to `ridge`: δ = relativeRidge · mean(diag R), QERA's "small diagonal perturbation". */
  relativeRidge?: number;
  kernels?: Kernels;
}

/** Thrown when R + δI has a non-positive pivot. */
export class NotPositiveDefiniteError extends QuantLensError {
  constructor(
    readonly pivot: number,
    readonly value: number,
    readonly ridge: number,
  ) {
    super(
      'bad-argument',
      `matrix is not positive definite even with ridge ${ridge.toExponential(3)}: pivot ${pivot} is ` +
        `${value.toExponential(3)}; use a larger ridge (e.g. 1e-6 to 1e-2 times the mean diagonal)`,
    );
  }
}

/** Block columns per GEMM step: large enough for GEMM efficiency, small for ~50 ms steps. */
const BLOCK = 256;

/**
 * Lower-triangular L (row-major, zeros above the diagonal) with R + δI = L·Lᵀ. Only the lower
 * triangle of R is read. Left-looking by block columns: the update of each block column is one
 * GEMM whose output is only n×BLOCK, the diagonal block is factored in JS and the block below it
 * is solved with the block's explicit inverse, again as a GEMM.
 */
export async function cholesky(r: Mat<Float64Array>, opts: CholeskyOptions = {}): Promise<Mat<Float64Array>> {
  const n = r.rows;
  if (r.cols !== n) throw new Error(`cholesky: matrix is ${r.rows}×${r.cols}, not square`);
  const k = opts.kernels ?? sharedKernels();
  const clock = new StepClock(opts.signal);
  const progress = new ProgressReporter(opts.onProgress);
  clock.check();
  const ridge = resolveRidge(r, opts);
  const l = new Float64Array(n * n);
  const work = new Float64Array(n * BLOCK);
  const left = new Float64Array(n * Math.max(0, n - BLOCK));
  const total = n ** 3;
  for (let j0 = 0; j0 < n; j0 += BLOCK) {
    const nb = Math.min(BLOCK, n - j0);
    const m = n - j0;
    // Panel = R[j0:, j0:j0+nb] (lower part meaningful), compact m × nb.
    const panel = work.subarray(0, m * nb);
    for (let i = 0; i < m; i++) {
      const src = (j0 + i) * n + j0;
      const dst = i * nb;
      for (let c = 0; c < nb; c++) panel[dst + c] = r.data[src + c]!;
    }
    let cur: Float64Array = panel;
    if (j0 > 0) {
      // Panel −= L[j0:, 0:j0] · L[j0:j0+nb, 0:j0]ᵀ, with L's left part copied compact.
      const lp = left.subarray(0, m * j0);
      for (let i = 0; i < m; i++) lp.set(l.subarray((j0 + i) * n, (j0 + i) * n + j0), i * j0);
      const res = await k.gemm(
        { data: lp, rows: m, cols: j0 },
        { data: lp.subarray(0, nb * j0), rows: nb, cols: j0 },
        { data: panel, rows: m, cols: nb },
        { transB: true, alpha: -1, beta: 1 },
      );
      clock.check();
      cur = res.data;
    }
    // Diagonal block in JS.
    const diag = new Float64Array(nb * nb);
    for (let i = 0; i < nb; i++) for (let c = 0; c <= i; c++) diag[i * nb + c] = cur[i * nb + c]!;
    for (let i = 0; i < nb; i++) diag[i * nb + i] = diag[i * nb + i]! + ridge;
    const bad = choleskyLowerInPlace(diag, nb);
    if (bad) throw new NotPositiveDefiniteError(j0 + bad.index, bad.value, ridge);
    for (let i = 0; i < nb; i++) l.set(diag.subarray(i * nb, i * nb + i + 1), (j0 + i) * n + j0);
    if (m > nb) {
      // L[j0+nb:, block] = Panel_below · L_bb⁻ᵀ.
      const inv = Float64Array.from(diag);
      invertLowerInPlace(inv, nb);
      const below = cur.subarray(nb * nb, m * nb);
      const sol = await k.matmul(
        { data: below, rows: m - nb, cols: nb },
        { data: inv, rows: nb, cols: nb },
        { transB: true },
      );
      clock.check();
      for (let i = 0; i < m - nb; i++) l.set(sol.data.subarray(i * nb, (i + 1) * nb), (j0 + nb + i) * n + j0);
    }
    progress.set(1 - (n - j0 - nb) ** 3 / total);
    await clock.tick();
  }
  return { data: l, rows: n, cols: n };
}

function resolveRidge(r: Mat<Float64Array>, opts: CholeskyOptions): number {
  if (opts.ridge !== undefined && opts.relativeRidge !== undefined) {
    throw new Error('cholesky: give either ridge or relativeRidge, not both');
  }
  if (opts.relativeRidge === undefined) return opts.ridge ?? 0;
  let trace = 0;
  for (let i = 0; i < r.rows; i++) trace += r.data[i * r.cols + i]!;
  return (opts.relativeRidge * trace) / Math.max(1, r.rows);
}

/**
 * Unblocked Cholesky of the lower triangle of the row-major n×n `a`, in place (inner products
 * along contiguous rows). Returns the first failing pivot, or undefined on success.
 */
export function choleskyLowerInPlace(a: Float64Array, n: number): { index: number; value: number } | undefined {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j]!;
    for (let c = 0; c < j; c++) d -= a[rj + c]! * a[rj + c]!;
    if (!(d > 0) || !Number.isFinite(d)) return { index: j, value: d };
    const ljj = Math.sqrt(d);
    a[rj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j]!;
      for (let c = 0; c < j; c++) s -= a[ri + c]! * a[rj + c]!;
      a[ri + j] = s * inv;
    }
  }
  for (let i = 0; i < n; i++) for (let c = i + 1; c < n; c++) a[i * n + c] = 0;
  return undefined;
}

/** Inverts a lower-triangular row-major n×n matrix in place (JS; for blocks up to a few hundred). */
export function invertLowerInPlace(a: Float64Array, n: number): void {
  const acc = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const d = a[ri + i]!;
    if (d === 0) throw new Error('invertLowerInPlace: singular triangular matrix');
    // Row i of X = L⁻¹: X[i][0:i] = −(Σ_{c<i} L[i][c]·X[c][0:c+1]) / L[i][i], accumulated as
    // axpys of the finished rows above (contiguous), then written over row i of L.
    acc.fill(0, 0, i);
    for (let c = 0; c < i; c++) {
      const coef = a[ri + c]!;
      if (coef === 0) continue;
      const rc = c * n;
      for (let j = 0; j <= c; j++) acc[j] = acc[j]! + coef * a[rc + j]!;
    }
    const inv = 1 / d;
    for (let j = 0; j < i; j++) a[ri + j] = -acc[j]! * inv;
    a[ri + i] = inv;
  }
}

export interface TriangularSolveOptions extends LinalgOptions {
  /** Solve Lᵀ·X = B instead of L·X = B. */
  transpose?: boolean;
  kernels?: Kernels;
}

/**
 * X with L·X = B (or Lᵀ·X = B) for lower-triangular L (n×n) and B (n×k), all float64.
 * Block substitution: each block row of X costs one GEMM of full rows of L (or Lᵀ) against the
 * solved part of X (the unsolved rows are zero, so no column range of L has to be cut out), with
 * an n_b×k output, plus an n_b×n_b triangular solve in JS. About 2·n²·k flops.
 */
export async function solveTriangular(
  l: Mat<Float64Array>,
  b: Mat<Float64Array>,
  opts: TriangularSolveOptions = {},
): Promise<Mat<Float64Array>> {
  const n = l.rows;
  if (l.cols !== n) throw new Error(`solveTriangular: L is ${l.rows}×${l.cols}, not square`);
  if (b.rows !== n) throw new Error(`solveTriangular: B has ${b.rows} rows, expected ${n}`);
  const kk = b.cols;
  const k = opts.kernels ?? sharedKernels();
  const clock = new StepClock(opts.signal);
  const progress = new ProgressReporter(opts.onProgress);
  clock.check();
  // Rows of the coefficient matrix: L itself, or Lᵀ (upper) materialised once.
  const t = opts.transpose ? transposeSquare(l.data, n) : l.data;
  const x = new Float64Array(n * kk);
  const blocks = Math.ceil(n / BLOCK);
  for (let bi = 0; bi < blocks; bi++) {
    // Forward for L (top block first), backward for Lᵀ.
    const blk = opts.transpose ? blocks - 1 - bi : bi;
    const i0 = blk * BLOCK;
    const nb = Math.min(BLOCK, n - i0);
    const rhs = Float64Array.from(b.data.subarray(i0 * kk, (i0 + nb) * kk));
    if (bi > 0) {
      const prod = await k.matmul(
        { data: t.subarray(i0 * n, (i0 + nb) * n), rows: nb, cols: n },
        { data: x, rows: n, cols: kk },
      );
      clock.check();
      for (let i = 0; i < rhs.length; i++) rhs[i] = rhs[i]! - prod.data[i]!;
    }
    solveDiagonalBlock(t, n, i0, nb, rhs, kk, !!opts.transpose);
    x.set(rhs, i0 * kk);
    progress.set((bi + 1) / blocks);
    await clock.tick();
  }
  return { data: x, rows: n, cols: kk };
}

/** Solves the nb×nb diagonal block of the row-major triangular `t` (lower, or upper when `upper`). */
function solveDiagonalBlock(
  t: Float64Array,
  n: number,
  i0: number,
  nb: number,
  rhs: Float64Array,
  k: number,
  upper: boolean,
): void {
  for (let s = 0; s < nb; s++) {
    const i = upper ? nb - 1 - s : s;
    const row = (i0 + i) * n + i0;
    const from = upper ? i + 1 : 0;
    const to = upper ? nb : i;
    for (let c = from; c < to; c++) {
      const coef = t[row + c]!;
      if (coef === 0) continue;
      const src = c * k;
      const dst = i * k;
      for (let j = 0; j < k; j++) rhs[dst + j] = rhs[dst + j]! - coef * rhs[src + j]!;
    }
    const inv = 1 / t[row + i]!;
    for (let j = 0; j < k; j++) rhs[i * k + j] = rhs[i * k + j]! * inv;
  }
}

function transposeSquare(a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  const T = 64;
  for (let i0 = 0; i0 < n; i0 += T) {
    for (let j0 = 0; j0 < n; j0 += T) {
      const i1 = Math.min(n, i0 + T);
      const j1 = Math.min(n, j0 + T);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * n + i] = a[i * n + j]!;
    }
  }
  return out;
}

/**
 * L⁻¹ for lower-triangular L (n×n, row-major), recursively:
 * inv([L₁₁ 0; L₂₁ L₂₂]) = [X₁₁ 0; −X₂₂·L₂₁·X₁₁ X₂₂], so all but the leaves are GEMMs.
 */
export async function invertLowerTriangular(l: Mat<Float64Array>, opts: LinalgOptions & { kernels?: Kernels } = {}) {
  const n = l.rows;
  if (l.cols !== n) throw new Error(`invertLowerTriangular: L is ${l.rows}×${l.cols}, not square`);
  const k = opts.kernels ?? sharedKernels();
  const clock = new StepClock(opts.signal);
  clock.check();
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out.set(l.data.subarray(i * n, i * n + i + 1), i * n);
  await invertRecursive(k, out, n, 0, n, clock);
  return { data: out, rows: n, cols: n } satisfies Mat<Float64Array>;
}

/** Inverts, in place, the diagonal block [o, o+size) of the row-major n×n lower-triangular `a`. */
async function invertRecursive(k: Kernels, a: Float64Array, n: number, o: number, size: number, clock: StepClock) {
  if (size <= 128) {
    const blk = new Float64Array(size * size);
    for (let i = 0; i < size; i++) blk.set(a.subarray((o + i) * n + o, (o + i) * n + o + i + 1), i * size);
    invertLowerInPlace(blk, size);
    for (let i = 0; i < size; i++) a.set(blk.subarray(i * size, i * size + i + 1), (o + i) * n + o);
    return;
  }
  const h = Math.floor(size / 2 / 64) * 64 || Math.floor(size / 2);
  await invertRecursive(k, a, n, o, h, clock);
  await invertRecursive(k, a, n, o + h, size - h, clock);
  const s2 = size - h;
  const x11 = compact(a, n, o, o, h, h);
  const l21 = compact(a, n, o + h, o, s2, h);
  const x22 = compact(a, n, o + h, o + h, s2, s2);
  const t = await k.matmul({ data: l21, rows: s2, cols: h }, { data: x11, rows: h, cols: h });
  const x21 = await k.gemm({ data: x22, rows: s2, cols: s2 }, t, undefined, { alpha: -1 });
  clock.check();
  for (let i = 0; i < s2; i++) a.set(x21.data.subarray(i * h, (i + 1) * h), (o + h + i) * n + o);
  await clock.tick();
}

function compact(a: Float64Array, n: number, r0: number, c0: number, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) out.set(a.subarray((r0 + i) * n + c0, (r0 + i) * n + c0 + cols), i * cols);
  return out;
}
