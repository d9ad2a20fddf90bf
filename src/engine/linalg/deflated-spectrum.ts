/**
 * All singular values of a matrix whose spectrum has a cliff: k dominant values well above the
 * rest, as in an L²QER-scaled error with activation-outlier channels (σ₁…σ_k near σ₁, then a drop
 * to 0.07·σ₁). A float32 Gram perturbs every σᵢ² by up to κ·u·σ₁², which is too much for the small
 * values that follow the cliff; the float64 route costs twice the time. Here the dominant part is
 * split off first, so that the float32 work only ever sees the remainder's norm (docs/algorithms.md
 * §8.3):
 *
 * 1. Y: an orthonormal basis (n×k) of the top-k singular subspace on the Gram's side, from a
 *    randomized SVD; a clear drop σ_{k+1}/σ_k makes it converge in a few power steps.
 * 2. With X the Gram's operand (n × inner, X·Xᵀ = the Gram): W = Yᵀ·X and X₂ = X − Y·W. In the
 *    basis [Y, Y⊥] the Gram is [[W·Wᵀ, W·X₂ᵀ], [X₂·Wᵀ, X₂·X₂ᵀ]] (for exactly orthonormal Y).
 * 3. θ = eig(W·Wᵀ) (k×k, float64) and the eigenvalues of X₂·X₂ᵀ by the float32 Gram and reduction,
 *    whose error now scales with ‖X₂‖² = σ_{k+1}² instead of σ₁².
 * 4. The coupling block X₂·Wᵀ is small (zero for the exact subspace). With ρ its norm and η the gap
 *    between θ_k and ‖X₂‖², the eigenvalues of the Gram differ from θ ∪ eig(X₂·X₂ᵀ) by at most
 *    ρ²/η (Li & Li 2005, the quadratic residual bound for Hermitian block matrices).
 *
 * Every value comes with a bound on its distance from the exact σᵢ(M·diag(s)), under the same
 * float32 error model as the fast routes (a float32 product or reduction errs by at most κ·u times
 * its operands' norms, κ = 16); callers accept the result only where the bounds meet their bars.
 */
import { gramOfOperand, gramOperand, resolveSide } from './gram';
import { kernels as sharedKernels, type FloatArray, type Kernels, type Mat } from './kernels';
import { buildModel, OnnxType } from '../onnx/builder';
import { orthonormalize } from './orthonormalize';
import { StepClock, subProgress, type LinalgOptions } from './progress';
import { topSingularTriplets } from './randomized-svd';
import { symmetricEigen } from './symmetric-eigen';
import { eigenvaluesInPlace, type BandOffload } from './symmetric-eigenvalues';
import { sharedWorkspace, type Workspace } from './workspace';

/** Unit roundoff of float32. */
export const U32 = 2 ** -24;
/** The float32 error model's constant: 4–5× the measured norms of a float32 Gram's and reduction's errors. */
export const FLOAT32_KAPPA = 16;

export interface DeflationOptions extends LinalgOptions {
  /** Singular values of M·diag(s) instead of M. */
  columnScale?: Float32Array | Float64Array;
  /** Expected σ_{k+1}/σ_k (sets the power steps of the randomized SVD); default 0.25. */
  drop?: number;
  /**
   * Top singular vectors of M·diag(s) already at hand (a randomized SVD of at least k values, e.g.
   * the method's factors): the first k on the Gram's side are used instead of a randomized SVD of
   * their own. Their accuracy enters the bounds like that of any subspace.
   */
  subspace?: TopVectors;
  /** Where the remainder's band may be reduced (EigenvalueOptions.bandElsewhere). */
  bandElsewhere?: BandOffload;
  kernels?: Kernels;
  workspace?: Workspace;
}

/** Leading singular vectors of M·diag(s) and its Frobenius norm, as a randomized SVD gives them. */
export interface TopVectors {
  /** Left vectors, rows × r. */
  u: Mat<FloatArray>;
  /** Right vectors as rows, r × cols. */
  vt: Mat<FloatArray>;
  /** ‖M·diag(s)‖_F. */
  frobenius: number;
}

export interface DeflatedSpectrum {
  /** All min(rows, cols) singular values, descending. */
  sigma: Float64Array;
  /** Bound on |σᵢ − exact σᵢ| for each value (Infinity everywhere when the split did not hold). */
  bound: Float64Array;
  /** Values split off (k). */
  rank: number;
}

/** Where a spectrum estimate (descending) has its cliff, if it has one. */
export interface Cliff {
  /** Values above the cliff (k). */
  rank: number;
  /** σ_{k+1}/σ_k. */
  drop: number;
}

/**
 * The deepest drop σ_{k+1}/σ_k ≤ `maxDrop` in an estimate of a spectrum, for k up to `maxRank`,
 * whose remainder is flat enough for float32 (σ_min(64,n)/σ_{k+1} ≥ `remainderRatio`).
 */
export function findCliff(
  estimate: Float64Array,
  opts: { maxRank: number; maxDrop?: number; remainderRatio?: number },
): Cliff | undefined {
  const maxDrop = opts.maxDrop ?? 0.5;
  const last = Math.min(64, estimate.length) - 1;
  let best: Cliff | undefined;
  for (let k = 1; k <= Math.min(opts.maxRank, estimate.length - 1); k++) {
    const above = estimate[k - 1]!;
    const below = estimate[k]!;
    if (!(above > 0)) break;
    const drop = below / above;
    if (drop > maxDrop || (best && drop >= best.drop)) continue;
    if (k < last && opts.remainderRatio && !(estimate[last]! >= opts.remainderRatio * below)) continue;
    best = { rank: k, drop };
  }
  return best;
}

/** Power steps for the top-k subspace to settle to about 1e-5 given the drop at the cliff. */
function powerSteps(drop: number): number {
  const d = Math.min(0.9, Math.max(1e-6, drop));
  return Math.min(5, Math.max(1, Math.ceil((Math.log(1e-5) / Math.log(d) - 1) / 2)));
}

/** Rows of X per call when X₂ = X − Y·W is formed (4 MB of float32 per block). */
const DEFLATE_BLOCK_ELEMENTS = 1 << 20;

/** All singular values of M (or M·diag(s)) with the top k split off; see the module comment. */
export async function deflatedSingularValues(
  m: Mat<Float32Array>,
  k: number,
  opts: DeflationOptions = {},
): Promise<DeflatedSpectrum> {
  const side = resolveSide(m.rows, m.cols);
  const n = side === 'columns' ? m.cols : m.rows;
  const inner = side === 'columns' ? m.rows : m.cols;
  if (!Number.isInteger(k) || k < 1 || k >= n) {
    throw new Error(`deflatedSingularValues: rank ${k} is outside 1..${n - 1}`);
  }
  const kern = opts.kernels ?? sharedKernels();
  const ws = opts.workspace ?? sharedWorkspace();
  const clock = new StepClock(opts.signal);
  const scale = opts.columnScale;

  // 1. The top-k subspace on the Gram's side, orthonormalized in float64.
  const given = opts.subspace && opts.subspace.vt.rows >= k ? opts.subspace : undefined;
  const t: TopVectors =
    given ??
    (await topSingularTriplets(m, k, {
      ...subProgress(opts, 0, 0.1),
      oversampling: 8,
      powerIterations: powerSteps(opts.drop ?? 0.25),
      ...(scale ? { columnScale: scale } : {}),
      kernels: kern,
    }));
  const basis = new Float64Array(n * k);
  if (side === 'columns') {
    for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) basis[i * k + j] = t.vt.data[j * n + i]!;
  } else {
    const r = t.u.cols;
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) basis[i * k + j] = t.u.data[i * r + j]!;
  }
  const y64 = (await orthonormalize({ data: basis, rows: n, cols: k }, { signal: opts.signal, kernels: kern })).q.data;
  const y = Float32Array.from(y64);
  const omega = orthonormalityDefect(y, n, k);
  await clock.tick();

  // 2. W = Yᵀ·X, X₂ = X − Y·W (in the Gram operand's buffer), the coupling X₂·Wᵀ.
  const x = gramOperand(m, side, {
    precision: 'float32',
    ...(scale ? { columnScale: scale } : {}),
    workspace: ws,
    copy: true,
  }) as Float32Array;
  const yMat = { data: y, rows: n, cols: k };
  const w = (await kern.matmul(yMat, { data: x, rows: n, cols: inner }, { transA: true })).data;
  clock.check();
  await subtractProduct(kern, x, y, w, n, inner, k, ws, clock);
  const coupling = (
    await kern.matmul({ data: x, rows: n, cols: inner }, { data: w, rows: k, cols: inner }, { transB: true })
  ).data;
  clock.check();
  const theta = (await symmetricEigen(rowGram(w, k, inner), k, 0, clock)).values;

  // 3. The remainder's eigenvalues by the float32 Gram and reduction.
  const a = ws.f32('a0-32', n * n);
  await gramOfOperand(x, n, inner, a, kern, clock, { workspace: ws });
  const rest = await eigenvaluesInPlace(a, n, {
    ...subProgress(opts, 0.3, 1),
    precision: 'float32',
    kernels: kern,
    workspace: ws,
    ...(opts.bandElsewhere ? { bandElsewhere: opts.bandElsewhere } : {}),
  });

  // 4. The values and their bounds.
  const sigma = new Float64Array(n);
  for (let i = 0; i < k; i++) sigma[i] = Math.sqrt(Math.max(0, theta[i]!));
  for (let i = k; i < n; i++) sigma[i] = Math.sqrt(Math.max(0, rest[i - k]!));
  const s1 = sigma[0]!;
  // σ-domain error of every value from forming X (rounding M·diag(s) to float32), the float32
  // products W and Y·W, and Y's distance from orthonormal.
  const representation = scale ? U32 * t.frobenius : 0;
  const eM = representation + (FLOAT32_KAPPA * U32 + 2 * omega) * s1;
  const lambdaRest = Math.max(0, rest[0]!);
  const restError = FLOAT32_KAPPA * U32 * lambdaRest;
  const restTop = Math.sqrt(lambdaRest + restError) + eM;
  const thetaLow = Math.max(0, sigma[k - 1]! - eM) ** 2;
  const gap = thetaLow - restTop * restTop;
  const bound = new Float64Array(n).fill(Infinity);
  if (gap > 0) {
    const rho = frobenius(coupling) + 3 * eM * s1;
    const shift = (rho * rho) / gap;
    for (let i = 0; i < n; i++) {
      const dl = i < k ? shift : restError + shift;
      const s = sigma[i]!;
      bound[i] = eM + (s > 0 ? Math.min(dl / s, Math.sqrt(dl)) : Math.sqrt(dl));
    }
  }
  return { sigma, bound, rank: k };
}

/** ‖YᵀY − I‖_F for the float32 columns of Y, in float64. */
function orthonormalityDefect(y: Float32Array, n: number, k: number): number {
  const g = new Float64Array(k * k);
  for (let i = 0; i < n; i++) {
    const row = i * k;
    for (let a = 0; a < k; a++) {
      const ya = y[row + a]!;
      for (let b = 0; b <= a; b++) g[a * k + b]! += ya * y[row + b]!;
    }
  }
  let s = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b <= a; b++) {
      const d = g[a * k + b]! - (a === b ? 1 : 0);
      s += (a === b ? 1 : 2) * d * d;
    }
  }
  return Math.sqrt(s);
}

/** W·Wᵀ (k×k, float64) for the k × inner float32 W. */
function rowGram(w: FloatArray, k: number, inner: number): Float64Array {
  const h = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b <= a; b++) {
      let s = 0;
      const ra = a * inner;
      const rb = b * inner;
      for (let j = 0; j < inner; j++) s += w[ra + j]! * w[rb + j]!;
      h[a * k + b] = s;
      h[b * k + a] = s;
    }
  }
  return h;
}

function frobenius(a: FloatArray): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

const DEFLATE_KEY = 'linalg:deflate:float32';

/** X − Y·W for row blocks of Y (b×k) and X (b×inner): one Gemm with C = X and beta 1. */
function deflateGraph(): Uint8Array {
  const f = OnnxType.FLOAT;
  return buildModel({
    name: 'deflate',
    inputs: [
      { name: 'Y', elemType: f, dims: ['b', 'k'] },
      { name: 'W', elemType: f, dims: ['k', 'c'] },
      { name: 'X', elemType: f, dims: ['b', 'c'] },
    ],
    nodes: [
      {
        op: 'Gemm',
        inputs: ['Y', 'W', 'X'],
        outputs: ['D'],
        attributes: { alpha: { kind: 'float', value: -1 }, beta: { kind: 'float', value: 1 } },
      },
    ],
    outputs: [{ name: 'D', elemType: f, dims: ['b', 'c'] }],
  });
}

/** X ← X − Y·W in place, by row blocks written through one reused scratch block. */
async function subtractProduct(
  kern: Kernels,
  x: Float32Array,
  y: Float32Array,
  w: FloatArray,
  n: number,
  inner: number,
  k: number,
  ws: Workspace,
  clock: StepClock,
): Promise<void> {
  const rows = Math.max(1, Math.floor(DEFLATE_BLOCK_ELEMENTS / inner));
  const scratch = ws.f32('deflate-block', Math.min(n, rows) * inner);
  for (let i0 = 0; i0 < n; i0 += rows) {
    const b = Math.min(rows, n - i0);
    const out = scratch.subarray(0, b * inner);
    await kern.run(
      DEFLATE_KEY,
      deflateGraph,
      {
        Y: { data: y.subarray(i0 * k, (i0 + b) * k), dims: [b, k] },
        W: { data: w, dims: [k, inner] },
        X: { data: x.subarray(i0 * inner, (i0 + b) * inner), dims: [b, inner] },
      },
      { D: { data: out, dims: [b, inner] } },
    );
    clock.check();
    x.set(out, i0 * inner);
    await clock.tick();
  }
}
