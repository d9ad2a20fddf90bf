/**
 * Orthonormal bases of tall blocks. CholeskyQR2 puts all O(m·n²) work into two Gram products and
 * two triangular multiplications (GEMMs); the shifted variant of Fukaya et al. (2020) extends it
 * to blocks up to cond ≈ 1/u; Householder QR in JS is the last resort for exactly rank-deficient
 * blocks, where any Cholesky-based method must fail.
 */
import { choleskyLowerInPlace, invertLowerInPlace } from './cholesky';
import { kernels as sharedKernels, type Kernels, type Mat } from './kernels';
import { panelQr } from './panel-qr';
import { StepClock, type LinalgOptions } from './progress';

const EPS = 2 ** -53;

export interface QrResult {
  /** m×n with orthonormal columns. */
  q: Mat<Float64Array>;
  /** n×n upper triangular (row-major) with Y = Q·R. */
  r: Float64Array;
}

/** Thin QR of the tall m×n float64 block Y (m ≥ n). */
export async function orthonormalize(
  y: Mat<Float64Array>,
  opts: LinalgOptions & { kernels?: Kernels } = {},
): Promise<QrResult> {
  const { rows: m, cols: n } = y;
  if (m < n) throw new Error(`orthonormalize: block is ${m}×${n}; needs at least as many rows as columns`);
  const k = opts.kernels ?? sharedKernels();
  const clock = new StepClock(opts.signal);
  clock.check();
  let q = y;
  let rTotal = identity(n);
  let clean = 0;
  // Two clean (unshifted) passes make Q orthonormal to working precision; shifted passes only
  // improve its conditioning, so allow a few of them first.
  for (let pass = 0; pass < 5 && clean < 2; pass++) {
    const g = (await k.matmul(q, q, { transA: true })).data;
    clock.check();
    const f = upperFactor(g, n, m);
    if (!f) return householderQr(y);
    if (!f.shifted) clean++;
    q = await k.matmul(q, { data: f.rinv, rows: n, cols: n });
    clock.check();
    rTotal = multiplyUpper(f.r, rTotal, n);
    await clock.tick();
  }
  if (clean < 2) return householderQr(y);
  return { q, r: rTotal };
}

/**
 * R and R⁻¹ (upper, row-major) with G (+ shift·I) = RᵀR; undefined when even the largest
 * reasonable shift fails (a non-finite or exactly singular block).
 */
function upperFactor(
  g: Float64Array,
  n: number,
  m: number,
): { r: Float64Array; rinv: Float64Array; shifted: boolean } | undefined {
  const a = Float64Array.from(g);
  let shifted = false;
  if (choleskyLowerInPlace(a, n)) {
    shifted = true;
    let trace = 0;
    for (let i = 0; i < n; i++) trace += g[i * n + i]!;
    if (!(trace > 0) || !Number.isFinite(trace)) return undefined;
    const shift = 11 * (m * n + n * (n + 1)) * EPS * trace;
    a.set(g);
    for (let i = 0; i < n; i++) a[i * n + i] = a[i * n + i]! + shift;
    if (choleskyLowerInPlace(a, n)) return undefined;
  }
  const r = transpose(a, n);
  invertLowerInPlace(a, n);
  return { r, rinv: transpose(a, n), shifted };
}

/** Householder QR in JS (O(m·n²) at JS speed): for exactly rank-deficient blocks only. */
export function householderQr(y: Mat<Float64Array>): QrResult {
  const { rows: m, cols: n } = y;
  const a = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[j * m + i] = y.data[i * n + j]!;
  const tau = new Float64Array(n);
  const rdiag = new Float64Array(n);
  panelQr(a, m, n, tau, rdiag);
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < j; i++) r[i * n + j] = a[j * m + i]!;
    r[j * n + j] = rdiag[j]!;
  }
  // Q = H₀·…·H_{n−1}·[I; 0], applied column by column (column-major scratch).
  const qc = new Float64Array(m * n);
  for (let j = 0; j < n; j++) qc[j * m + j] = 1;
  for (let h = n - 1; h >= 0; h--) {
    const t = tau[h]!;
    if (t === 0) continue;
    const vh = h * m;
    for (let j = h; j < n; j++) {
      const cj = j * m;
      let s = qc[cj + h]!;
      for (let i = h + 1; i < m; i++) s += a[vh + i]! * qc[cj + i]!;
      s *= t;
      qc[cj + h] = qc[cj + h]! - s;
      for (let i = h + 1; i < m; i++) qc[cj + i] = qc[cj + i]! - s * a[vh + i]!;
    }
  }
  const q = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) q[i * n + j] = qc[j * m + i]!;
  return { q: { data: q, rows: m, cols: n }, r };
}

function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

function transpose(a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j * n + i] = a[i * n + j]!;
  return out;
}

/** a·b for upper-triangular row-major n×n matrices. */
export function multiplyUpper(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let c = i; c < n; c++) {
      const aic = a[i * n + c]!;
      if (aic === 0) continue;
      for (let j = c; j < n; j++) out[i * n + j] = out[i * n + j]! + aic * b[c * n + j]!;
    }
  }
  return out;
}
