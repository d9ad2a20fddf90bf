/**
 * Top-r singular triplets by randomized subspace iteration (Halko, Martinsson & Tropp 2011):
 * ℓ = r + p random directions, q power steps (each re-orthonormalized by CholeskyQR), a final
 * CholeskyQR2 basis Q, and the eigen-decomposition of the small ℓ×ℓ matrix (QᵀM)(QᵀM)ᵀ.
 * All products with M run in M's dtype through fused onnxruntime graphs; the factorizations of
 * ℓ×ℓ Gram matrices and the small eigenproblem run in float64 JS.
 */
import {
  cholesky,
  choleskyLowerInPlace,
  invertLowerInPlace,
  invertLowerTriangular,
  NotPositiveDefiniteError,
} from './cholesky';
import { multiplyUpper } from './orthonormalize';
import {
  kernels as sharedKernels,
  dtypeOf,
  newArray,
  type DType,
  type FloatArray,
  type Kernels,
  type Mat,
} from './kernels';
import { ProgressReporter, StepClock, type LinalgOptions } from './progress';
import {
  basisGramGraph,
  basisGramKey,
  factorsGraph,
  factorsKey,
  powerStepGraph,
  powerStepKey,
  projectGraph,
  projectKey,
} from './rsvd-graphs';
import { symmetricEigen } from './symmetric-eigen';
import { mulberry32 } from '../random';

export interface TripletOptions extends LinalgOptions {
  /** Extra sampled directions p (ℓ = r + p). Default: max(32, r/2), the knee for flat spectra. */
  oversampling?: number;
  /** Power steps q (each is one product with Mᵀ and one with M). Default 3. */
  powerIterations?: number;
  /** Seed of the random start; results are reproducible for a given seed. */
  seed?: number;
  /**
   * Also measure ‖M − U·Σ·Vᵀ‖_F directly (one more pass over M with an M-sized output) instead of
   * only through the energy identity ‖M‖² − Σσᵢ², which loses relative accuracy when the residual
   * is below about 1e-4·‖M‖_F.
   */
  exactResidual?: boolean;
  /**
   * Decompose N = M·diag(s) instead of M. The scale is applied to the thin operands inside the
   * products, so N is never formed (it would cost a copy of M; see workspace.ts on fresh memory).
   */
  columnScale?: Float32Array | Float64Array;
  /** Σ_r M[r, j]² per column j, when the caller has it: ‖M‖_F then costs no pass over M. */
  columnSq?: Float64Array;
  kernels?: Kernels;
}

export interface SingularTriplets<T extends FloatArray = FloatArray> {
  /** rows × r, orthonormal columns. */
  u: Mat<T>;
  /** r values, descending. */
  sigma: Float64Array;
  /** r × cols. σᵢ·vᵢᵀ = uᵢᵀ·M to M's precision; vᵢ's orthogonality degrades as σᵢ/σ₁ → 0. */
  vt: Mat<T>;
  /** ‖M − U·Σ·Vᵀ‖_F (see `exactResidual`). */
  residual: number;
  /** ‖M‖_F, so that callers can show the captured share of the energy. */
  frobenius: number;
  /**
   * All ℓ Ritz values (descending): estimates of σ₁…σ_ℓ, each at most the true value, the top r
   * of them equal to `sigma`. Cheap hints about the spectrum's shape past rank r.
   */
  ritz: Float64Array;
  /** ℓ and q actually used. */
  sampled: number;
  powerIterations: number;
}

export const DEFAULT_POWER_ITERATIONS = 3;
export function defaultOversampling(r: number): number {
  return Math.max(32, Math.ceil(r / 2));
}

const EPS = 2 ** -53;

/** Top-r singular triplets of M (float32 or float64; products run in M's dtype). */
export async function topSingularTriplets<T extends FloatArray>(
  m: Mat<T>,
  r: number,
  opts: TripletOptions = {},
): Promise<SingularTriplets<T>> {
  const { rows, cols } = m;
  const minDim = Math.min(rows, cols);
  if (!Number.isInteger(r) || r < 1 || r > minDim) {
    throw new Error(`topSingularTriplets: rank ${r} is outside 1..${minDim}`);
  }
  const k = opts.kernels ?? sharedKernels();
  const clock = new StepClock(opts.signal);
  const progress = new ProgressReporter(opts.onProgress);
  clock.check();
  const dtype = dtypeOf(m.data);
  const l = Math.min(minDim, r + (opts.oversampling ?? defaultOversampling(r)));
  const q = opts.powerIterations ?? DEFAULT_POWER_ITERATIONS;
  const steps = 2 * q + 4;
  let done = 0;
  const step = () => progress.set(++done / steps);

  const mm = { data: m.data, dims: [rows, cols] };
  if (opts.columnScale && opts.columnScale.length !== cols) {
    throw new Error(`topSingularTriplets: columnScale has ${opts.columnScale.length} entries, expected ${cols}`);
  }
  const scaleData = columnScaleIn(dtype, cols, opts.columnScale);
  const scaleCol = { data: scaleData, dims: [cols, 1] };
  const scaleRow = { data: scaleData, dims: [1, cols] };
  // Y = M·Ω, then q rounds of Z = Mᵀ·orth(Y), Y = M·orth(Z); orth via the previous block's Gram.
  let x: FloatArray = gaussian(dtype, cols * l, opts.seed ?? 1);
  let rinv: Float64Array = identity(l);
  let transposed = false;
  let y: FloatArray = x;
  let g: Float64Array = new Float64Array(0);
  for (let s = 0; s <= 2 * q; s++) {
    const out = await k.run(powerStepKey(dtype, transposed), () => powerStepGraph(dtype, transposed), {
      M: mm,
      X: { data: x, dims: [transposed ? rows : cols, l] },
      Rinv: { data: castTo(dtype, rinv), dims: [l, l] },
      S: scaleCol,
    });
    clock.check();
    y = out.Y!.data as FloatArray;
    g = out.G!.data as Float64Array;
    step();
    if (s < 2 * q) {
      rinv = (await inverseCholeskyFactor(k, g, l, rows)).rinv;
      x = y;
      transposed = !transposed;
    }
    await clock.tick();
  }
  // Final basis by CholeskyQR2 (with a shift when the block is too ill-conditioned for plain
  // CholeskyQR, after Fukaya et al. 2020), then B·Bᵀ for B = Qᵀ·M.
  const first = await inverseCholeskyFactor(k, g, l, rows);
  const ident = identity(l);
  const g2 = (
    await k.run(basisGramKey(dtype), () => basisGramGraph(dtype), {
      Y: { data: y, dims: [rows, l] },
      R1: { data: first.rinv, dims: [l, l] },
      R2: { data: ident, dims: [l, l] },
    })
  ).G!.data as Float64Array;
  clock.check();
  step();
  let second = await inverseCholeskyFactor(k, g2, l, rows);
  if (first.shifted || second.shifted) {
    // A shifted pass leaves Q only well-conditioned, not orthonormal: one more pass.
    const g3 = (
      await k.run(basisGramKey(dtype), () => basisGramGraph(dtype), {
        Y: { data: y, dims: [rows, l] },
        R1: { data: first.rinv, dims: [l, l] },
        R2: { data: second.rinv, dims: [l, l] },
      })
    ).G!.data as Float64Array;
    clock.check();
    const third = await inverseCholeskyFactor(k, g3, l, rows);
    second = { rinv: multiplyUpper(second.rinv, third.rinv, l), shifted: third.shifted };
  }
  const proj = await k.run(projectKey(dtype), () => projectGraph(dtype), {
    M: mm,
    Y: { data: y, dims: [rows, l] },
    R1: { data: first.rinv, dims: [l, l] },
    R2: { data: second.rinv, dims: [l, l] },
    S: scaleRow,
  });
  clock.check();
  step();
  const qBasis = proj.Q!.data as Float64Array;
  const c = proj.C!.data as Float64Array;
  const eig = await symmetricEigen(c, l, r, clock);
  step();
  const sigma = new Float64Array(r);
  const sinv = new Float64Array(r);
  for (let i = 0; i < r; i++) {
    const s = Math.sqrt(Math.max(0, eig.values[i]!));
    sigma[i] = s;
    sinv[i] = s > 0 ? 1 / s : 0;
  }
  const fac = await k.run(factorsKey(dtype), () => factorsGraph(dtype), {
    Q: { data: qBasis, dims: [rows, l] },
    E: { data: eig.vectors, dims: [r, l] },
    Sinv: { data: sinv, dims: [r, 1] },
    Bd: { data: proj.Bd!.data, dims: [l, cols] },
  });
  clock.check();
  const u = { data: fac.U!.data as T, rows, cols: r };
  const vt = { data: fac.Vt!.data as T, rows: r, cols };
  if (opts.columnSq && opts.columnSq.length !== cols) {
    throw new Error(`topSingularTriplets: columnSq has ${opts.columnSq.length} entries, expected ${cols}`);
  }
  const fro2 = opts.columnSq
    ? scaledColumnTotal(opts.columnSq, opts.columnScale)
    : opts.columnScale
      ? scaledSumOfSquares(m.data, cols, opts.columnScale)
      : sumOfSquares(m.data);
  let captured = 0;
  for (let i = 0; i < r; i++) captured += sigma[i]! * sigma[i]!;
  let residual = Math.sqrt(Math.max(0, fro2 - captured));
  if (opts.exactResidual) {
    if (opts.columnScale) throw new Error('topSingularTriplets: exactResidual is not available with a columnScale');
    residual = await exactResidual(k, m, u, sigma, vt, clock);
  }
  const ritz = Float64Array.from(eig.values, (x) => Math.sqrt(Math.max(0, x)));
  progress.set(1, true);
  return { u, sigma, vt, residual, frobenius: Math.sqrt(fro2), ritz, sampled: l, powerIterations: q };
}

/**
 * Creates the power steps' sessions and runs each once on a tiny input. A process's first
 * onnxruntime session (its environment and thread pool) and first run cost 80–100 ms more than
 * later ones (measured at 14336×4096); a caller that is about to read a weight can spend that time
 * while the read is in flight.
 */
export async function warmUpTriplets(dtype: DType = 'float32', k: Kernels = sharedKernels()): Promise<void> {
  const one = (n: number) => ({ data: newArray(dtype, n), dims: [n, 1] });
  for (const transposed of [false, true]) {
    await k.run(powerStepKey(dtype, transposed), () => powerStepGraph(dtype, transposed), {
      M: { data: newArray(dtype, 4), dims: [2, 2] },
      X: one(2),
      Rinv: one(1),
      S: one(2),
    });
  }
}

/** ‖M − U·diag(σ)·Vᵀ‖_F by block rows of GEMMs (in M's dtype, summed in float64). */
export async function exactResidual<T extends FloatArray>(
  k: Kernels,
  m: Mat<T>,
  u: Mat<T>,
  sigma: Float64Array,
  vt: Mat<T>,
  clock?: StepClock,
): Promise<number> {
  const r = sigma.length;
  const dtype = dtypeOf(m.data);
  const svt = (dtype === 'float32' ? new Float32Array(r * vt.cols) : new Float64Array(r * vt.cols)) as T;
  for (let i = 0; i < r; i++) {
    const s = sigma[i]!;
    for (let j = 0; j < vt.cols; j++) svt[i * vt.cols + j] = s * vt.data[i * vt.cols + j]!;
  }
  const block = Math.max(1, Math.floor((1 << 22) / Math.max(1, m.cols)));
  let total = 0;
  for (let i0 = 0; i0 < m.rows; i0 += block) {
    const nb = Math.min(block, m.rows - i0);
    const diff = await k.gemm(
      { data: u.data.subarray(i0 * r, (i0 + nb) * r) as T, rows: nb, cols: r },
      { data: svt, rows: r, cols: vt.cols },
      { data: m.data.subarray(i0 * m.cols, (i0 + nb) * m.cols) as T, rows: nb, cols: m.cols },
      { alpha: -1, beta: 1 },
    );
    total += sumOfSquares(diff.data);
    if (clock) {
      clock.check();
      await clock.tick();
    }
  }
  return Math.sqrt(total);
}

/**
 * R⁻¹ (upper triangular, row-major) for the Gram G = RᵀR of an n-row block, so that Y·R⁻¹ has
 * orthonormal columns up to the Gram's conditioning. When plain Cholesky fails, G + s·I with
 * Fukaya et al.'s shift s = 11·(n·ℓ + ℓ(ℓ+1))·u·‖G‖ is factored instead.
 */
async function inverseCholeskyFactor(
  k: Kernels,
  g: Float64Array,
  l: number,
  n: number,
): Promise<{ rinv: Float64Array; shifted: boolean }> {
  let lower = await lowerFactor(k, g, l, 0);
  let shifted = false;
  if (!lower) {
    shifted = true;
    let trace = 0;
    for (let i = 0; i < l; i++) trace += g[i * l + i]!;
    let shift = 11 * (n * l + l * (l + 1)) * EPS * Math.max(trace, Number.MIN_VALUE);
    for (let attempt = 0; !lower; attempt++) {
      if (attempt > 20) throw new Error('randomized SVD: could not orthonormalize the sampled block');
      lower = await lowerFactor(k, g, l, shift);
      shift *= 10;
    }
  }
  const inv = await invertLower(k, lower, l);
  // R⁻¹ = (L⁻¹)ᵀ.
  const rinv = new Float64Array(l * l);
  for (let i = 0; i < l; i++) for (let j = 0; j <= i; j++) rinv[j * l + i] = inv[i * l + j]!;
  return { rinv, shifted };
}

/** Above this order the ℓ×ℓ factorizations go through the GEMM-based routines. */
const JS_FACTOR_LIMIT = 256;

/** Lower Cholesky factor of G + shift·I, or undefined when it is not positive definite. */
async function lowerFactor(k: Kernels, g: Float64Array, l: number, shift: number): Promise<Float64Array | undefined> {
  if (l <= JS_FACTOR_LIMIT) {
    const a = Float64Array.from(g);
    for (let i = 0; i < l; i++) a[i * l + i] = a[i * l + i]! + shift;
    return choleskyLowerInPlace(a, l) ? undefined : a;
  }
  try {
    return (await cholesky({ data: g, rows: l, cols: l }, { ridge: shift, kernels: k })).data;
  } catch (e) {
    if (e instanceof NotPositiveDefiniteError) return undefined;
    throw e;
  }
}

async function invertLower(k: Kernels, lower: Float64Array, l: number): Promise<Float64Array> {
  if (l <= JS_FACTOR_LIMIT) {
    invertLowerInPlace(lower, l);
    return lower;
  }
  return (await invertLowerTriangular({ data: lower, rows: l, cols: l }, { kernels: k })).data;
}

function identity(l: number): Float64Array {
  const out = new Float64Array(l * l);
  for (let i = 0; i < l; i++) out[i * l + i] = 1;
  return out;
}

function castTo(dtype: DType, a: Float64Array): FloatArray {
  return dtype === 'float64' ? a : Float32Array.from(a);
}

/** Longest start block drawn so far per dtype and seed (read only: the graphs never write their inputs). */
const starts = new Map<string, FloatArray>();
/** Most values a cached start block may hold (64 MB in float64). */
const START_CACHE_LIMIT = 1 << 23;

/**
 * n standard normals from `seed`. A shorter draw is a prefix of a longer one, so the longest draw
 * is kept and shared: a sweep's layers would otherwise draw the same numbers again each time.
 */
function gaussian(dtype: DType, n: number, seed: number): FloatArray {
  const key = `${dtype}:${seed}`;
  const have = starts.get(key);
  if (have && have.length >= n) return have.subarray(0, n);
  const out = drawGaussian(dtype, n, seed);
  if (n <= START_CACHE_LIMIT) starts.set(key, out);
  return out;
}

function drawGaussian(dtype: DType, n: number, seed: number): FloatArray {
  const out = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  const rand = mulberry32(seed);
  for (let i = 0; i < n; i += 2) {
    // Box–Muller: two independent normals per pair of uniforms.
    const u1 = Math.max(rand(), 1e-300);
    const u2 = rand();
    const rad = Math.sqrt(-2 * Math.log(u1));
    out[i] = rad * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = rad * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** The scale as a tensor in M's dtype (ones when there is none). */
function columnScaleIn(dtype: DType, cols: number, s: Float32Array | Float64Array | undefined): FloatArray {
  const out = dtype === 'float32' ? new Float32Array(cols) : new Float64Array(cols);
  if (s) out.set(s);
  else out.fill(1);
  return out;
}

/** ‖M·diag(s)‖²_F for a row-major M with `cols` columns. */
function scaledSumOfSquares(a: FloatArray, cols: number, s: Float32Array | Float64Array): number {
  const colSq = new Float64Array(cols);
  for (let i = 0; i < a.length; i += cols) {
    for (let j = 0; j < cols; j++) {
      const x = a[i + j]!;
      colSq[j]! += x * x;
    }
  }
  return scaledColumnTotal(colSq, s);
}

/** Σ_j colSq[j]·s[j]² (s = 1 when absent). */
function scaledColumnTotal(colSq: Float64Array, s?: Float32Array | Float64Array): number {
  let total = 0;
  for (let j = 0; j < colSq.length; j++) total += s ? colSq[j]! * s[j]! * s[j]! : colSq[j]!;
  return total;
}

function sumOfSquares(a: FloatArray): number {
  let s0 = 0;
  let s1 = 0;
  const n = a.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const x = a[i]!;
    const y = a[i + 1]!;
    s0 += x * x;
    s1 += y * y;
  }
  if (i < n) s0 += a[i]! * a[i]!;
  return s0 + s1;
}
