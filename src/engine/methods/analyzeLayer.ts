/**
 * One linear layer, end to end: quantize W, form the error, scale it as the method says, take both
 * spectra and the top-R factors, and turn them into exact error curves for every rank k ≤ R.
 *
 * Conventions (docs/algorithms.md §1.1–1.2): W is [out, in]; the code works on E' = Eᵀ [in, out]; a diagonal
 * scale s acts on the input dimension; A = S⁻¹U_R [in, R], B = Σ_R·V_Rᵀ [R, out]; Ŵ = W_q + (A·B)ᵀ.
 */
import { QuantLensError, isQuantLensError, throwIfCancelled } from '../errors';
import {
  cholesky,
  gram,
  type Gram,
  kernels,
  mat,
  resolveSide,
  singularValues,
  singularValuesFromGram,
  squareRoots,
  sharedWorkspace,
  solveTriangular,
  topSingularTriplets,
  deflatedSingularValues,
  findCliff,
  FLOAT32_KAPPA,
  U32,
  type BandOffload,
  type DeflatedSpectrum,
  type Mat,
  type SymmetricBand,
  type TopVectors,
  type Workspace,
} from '../linalg';
import {
  fakeQuantize,
  formatToString,
  isQuantized,
  parseFormat,
  tileOf,
  withTile,
  type NumberFormat,
} from '../quantizers';
import { METHODS, appliedRank, isScaled, type ScaleKind } from './methods';
import { denseQuadratic, rankCurves, type FactorQuantization, type MetricWeight, type RankCurve } from './rankCurves';
import { ggmlStorage, type GgmlStorage } from '../quantizers/ggml/ggmlQuant';
import { l2qerScale, qeraApproxScale } from './scales';
import { stageTimer } from './stageTimer';
import { BandedErrorPass, errorPass, type BandedPassSpec, type ErrorNorms } from './errorBands';
import { fitStepSizes, stepFitMetric, type StepFitSummary } from './stepFitting';
import type {
  AnalysisSettings,
  FactorTiling,
  LayerAnalysis,
  LayerCalibration,
  OutputErrorKind,
  SpectrumRouteName,
} from './layerAnalysis';

export type { AnalysisSettings, FactorTiling, LayerAnalysis, LayerCalibration, OutputErrorKind };

export interface LayerInput {
  name: string;
  data: Float32Array;
  out: number;
  in: number;
  calibration?: LayerCalibration;
  /** The file holding the weight, named in errors about its values. */
  file?: string;
}

export interface AnalyzeOptions {
  signal?: AbortSignal;
  onProgress?: (fraction: number, step: string) => void;
  /**
   * Progressive analysis: called with earlier, partial results before the full one is returned:
   * first the metrics and exact curves up to rank max(FIRST_RANK, firstRank) with the top of both
   * spectra, then (when it adds something) the curves to the full rank. Each carries `preview`.
   */
  onPartial?: (partial: LayerAnalysis) => void;
  /** Rank the first partial result must cover (the slider's current rank). */
  firstRank?: number;
  /**
   * The caller read W for this analysis only: its storage may be overwritten (by E), which saves
   * a copy of the layer's size.
   */
  consumeWeight?: boolean;
  /** Told which route each spectrum took in the end (diagnostics: tests and the benchmark). */
  onSpectrumRoute?: (spectrum: 'plain' | 'scaled', route: SpectrumRouteName) => void;
  /**
   * Runs the float32 reduction of E's spectrum on another thread (the worker's helper), beside this
   * thread's factors, curves and scaled spectrum. Without it everything runs here, one after another.
   */
  offload?: EigenvalueOffload;
  /**
   * The helper thread's band reduction (chase and tridiagonal eigenvalues), which the scaled
   * spectrum hands over when `turn` says another analysis waits for this thread.
   */
  offloadBand?: BandEigenvalueOffload;
  /** This thread, shared with other analyses (a pipelined layer loop); see ThreadTurn. */
  turn?: ThreadTurn;
  /**
   * Scratch memory of this analysis (default: the thread's shared workspace). Analyses that run
   * beside each other on one thread (see `turn`) each need their own.
   */
  workspace?: Workspace;
  /**
   * The error pass begun while W was read (startErrorPass, with the same settings and calibration):
   * the bands it has done already hold E. Needs `consumeWeight`.
   */
  errorPass?: BandedErrorPass;
}

/**
 * Eigenvalues (descending) of a symmetric n×n float32 matrix (full storage), computed on another
 * thread by the float32 dense → band reduction of linalg. Implementations copy the matrix before
 * they return (the caller's storage may change at once) and reject with a 'cancelled' error when
 * the signal fires.
 */
export type EigenvalueOffload = (matrix: Float32Array, n: number, signal?: AbortSignal) => Promise<Float64Array>;

/** Eigenvalues (descending) of a symmetric band, on another thread; the band is copied before this returns. */
export type BandEigenvalueOffload = (band: SymmetricBand, signal?: AbortSignal) => Promise<Float64Array>;

/**
 * A thread shared by analyses that run beside each other (a layer loop with the next layer started
 * while this one waits): one runs at a time, and it lets another run only while it waits for the
 * helper thread. That is where the wait pays: the helper reduces this layer's band while the next
 * layer is read and quantized here.
 */
export interface ThreadTurn {
  /** Whether another analysis is waiting to run on this thread. */
  readonly contended: boolean;
  /** Awaits `p` with the thread given to whoever waits, and takes it back before returning or throwing. */
  away<T>(p: Promise<T>): Promise<T>;
}

/** An offloaded reduction's outcome; never rejects, so that an abandoned one cannot go unhandled. */
type Offloaded = Promise<{ values?: Float64Array; error?: unknown }>;

/** Default relative ridge for QERA-exact; raised ×10 until the Cholesky factor exists. */
export const DEFAULT_RIDGE = 1e-6;

export function factorFormats(
  factorFormat: string,
  tiling: FactorTiling,
): { a: NumberFormat; b: NumberFormat; aRankTile: number; bRankTile: number } {
  const f = parseFormat(factorFormat);
  const t = tileOf(f);
  if (!t) return { a: f, b: f, aRankTile: 1, bRankTile: 1 };
  const size = Math.max(t[0], t[1]);
  // A is [in, k], B is [k, out]: 'last-dim' tiles A along k (rank) and B along out.
  if (tiling === 'last-dim') {
    return { a: withTile(f, [1, size]), b: withTile(f, [1, size]), aRankTile: size, bRankTile: 1 };
  }
  return { a: withTile(f, [size, 1]), b: withTile(f, [size, 1]), aRankTile: 1, bRankTile: size };
}

function checkSettings(s: AnalysisSettings, input: Pick<LayerInput, 'name' | 'calibration'>): void {
  if (!(s.method in METHODS)) throw new QuantLensError('bad-argument', `unknown method "${s.method}"`);
  if (!Number.isInteger(s.maxRank) || s.maxRank < 0) {
    throw new QuantLensError('bad-argument', `rank must be a non-negative integer, got ${s.maxRank}`);
  }
  const need = METHODS[s.method].needs;
  const c = input.calibration;
  const missing =
    (need === 'act_mean_abs' && !c?.meanAbs) || (need === 'act_rms' && !c?.rms) || (need === 'act_gram' && !c?.gram);
  if (missing) {
    throw new QuantLensError(
      'needs-calibration',
      `${METHODS[s.method].label} needs ${need} for layer "${input.name}"; without calibration only RTN and LQER can run`,
    );
  }
}

/** Everything derived from W and the method before any decomposition. */
export interface PreparedLayer {
  /** E = W − W_q, [out, in], float32 (its stored layout: no transposed or widened copy). */
  error: Mat<Float32Array>;
  /** Σ_o E[o, i]² per input channel. */
  errorColumnSq: Float64Array;
  /** Σ_o W[o, i]² per input channel, when a diagonal output metric needs it. */
  weightColumnSq: Float64Array | null;
  weightSq: number;
  errorSq: number;
  scale: Float64Array | null;
  /** Cholesky factor of R + δI (QERA-exact). */
  chol: Mat<Float64Array> | null;
  ridge: number | null;
  nonFinite: number;
  /** How the step sizes were fitted, for `int…:fitted` weight formats (stepFitting.ts). */
  stepFit: StepFitSummary | null;
}

async function quantizeInto(
  input: LayerInput,
  s: AnalysisSettings,
  out: Float32Array,
  signal?: AbortSignal,
): Promise<{ wq: Float32Array; stepFit: StepFitSummary | null }> {
  const { out: rows, in: nIn, data } = input;
  const wFmt = parseFormat(s.weightFormat);
  if (wFmt.kind === 'int' && wFmt.fitted) {
    // Fitted step sizes: the objective is the best error the layer's calibration supports.
    const fit = await fitStepSizes(data, rows, nIn, wFmt, { ...stepFitMetric(input.calibration, nIn), signal });
    out.set(fit.wq);
    return { wq: out, stepFit: fit.summary };
  }
  if (!isQuantized(wFmt)) {
    out.set(data);
    return { wq: out, stepFit: null };
  }
  const importance = weightImportance(wFmt, input);
  return { wq: fakeQuantize(data, rows, nIn, wFmt, { out, importance }), stepFit: null };
}

/** llama.cpp's importance matrix for `…:imatrix` weight formats (null for every other format). */
function weightImportance(
  wFmt: NumberFormat,
  input: Pick<LayerInput, 'name' | 'in' | 'calibration'>,
): Float32Array | null {
  if (wFmt.kind !== 'ggml' || !wFmt.imatrix) return null;
  const importance = importanceOf(input.calibration, input.in);
  if (!importance) {
    throw new QuantLensError(
      'needs-calibration',
      `${formatToString(wFmt)} weighs by the importance of each input channel (act_rms²) and layer "${input.name}" has no calibration`,
    );
  }
  return importance;
}

/**
 * Rows per band when E can be formed band by band (each band quantized on its own gives the same
 * W_q: tiles never cross a band), or null when the format needs the whole matrix at once (NVFP4's
 * per-tensor scale, tiles spanning all rows, fitted step sizes).
 */
function bandRows(fmt: NumberFormat): number | null {
  if (!isQuantized(fmt) || fmt.kind === 'nvfp4' || (fmt.kind === 'int' && fmt.fitted)) return null;
  const t = tileOf(fmt);
  if (!t || t[0] <= 0) return null;
  return t[0] * Math.max(1, Math.ceil(64 / t[0]));
}

function bandedSpec(
  input: Pick<LayerInput, 'name' | 'out' | 'in' | 'calibration'>,
  s: AnalysisSettings,
  band: number,
): BandedPassSpec {
  const format = parseFormat(s.weightFormat);
  return {
    out: input.out,
    nIn: input.in,
    format,
    weightFormat: s.weightFormat,
    importance: weightImportance(format, input),
    weightColumns: weightColumnsWanted(input),
    band,
  };
}

/** Whether the error pass also sums W² per input channel (a diagonal output metric needs it). */
function weightColumnsWanted(input: Pick<LayerInput, 'calibration'>): boolean {
  return !!input.calibration?.rms && !input.calibration.gram;
}

/**
 * An error pass to feed with a layer's rows while they are read (BandedErrorPass.advance), for an
 * analysis that consumes the weight; null where the analysis needs W whole (a format whose tiles
 * span the matrix, a dense output metric that reads W itself). Refuses settings the analysis
 * would refuse, before anything is read.
 */
export function startErrorPass(
  layer: Pick<LayerInput, 'name' | 'out' | 'in' | 'calibration'>,
  s: AnalysisSettings,
): BandedErrorPass | null {
  checkSettings(s, layer);
  const band = bandRows(parseFormat(s.weightFormat));
  if (band === null || layer.calibration?.gram) return null;
  return new BandedErrorPass(bandedSpec(layer, s, band));
}

function checkPass(pass: BandedErrorPass, input: LayerInput, s: AnalysisSettings): void {
  const p = pass.spec;
  const band = bandRows(parseFormat(s.weightFormat));
  if (
    p.out !== input.out ||
    p.nIn !== input.in ||
    p.weightFormat !== s.weightFormat ||
    p.band !== band ||
    input.calibration?.gram ||
    p.weightColumns !== weightColumnsWanted(input)
  ) {
    throw new Error(`analyzeLayer: the error pass started for "${input.name}" does not match the analysis`);
  }
}

/**
 * Quantizes W and prepares the error. Where E goes matters on big layers, whose analysis would
 * otherwise spend more on page faults for fresh memory than on most of its arithmetic:
 * - `consume`: E overwrites W in the input's own storage, band by band (W_q of a band in a small
 *   scratch); for callers that read W for this analysis only;
 * - `into`: a reused workspace buffer;
 * - otherwise a new array, and W_q is kept.
 */
async function prepareError(
  input: LayerInput,
  s: AnalysisSettings,
  signal: AbortSignal | undefined,
  where: { consume?: boolean; into?: Float32Array; streamed?: BandedErrorPass } = {},
): Promise<PreparedLayer & { wq: Float32Array | null }> {
  const { out, in: nIn, data } = input;
  if (data.length !== out * nIn) throw new Error(`weight has ${data.length} values, expected ${out}×${nIn}`);
  // Every path (analysis, reconstruction for export) checks the method's statistics are there.
  checkSettings(s, input);
  const wFmt = parseFormat(s.weightFormat);
  const weightColumns = weightColumnsWanted(input);
  const band = where.consume ? bandRows(wFmt) : null;
  let e: Float32Array;
  let wq: Float32Array | null = null;
  let norms: ErrorNorms;
  let stepFit: StepFitSummary | null = null;
  if (band !== null) {
    e = data;
    const pass = where.streamed ?? new BandedErrorPass(bandedSpec(input, s, band));
    norms = pass.finish(data, signal);
  } else {
    // With a buffer for E (or W's own), W_q is formed there and overwritten by E in place.
    e = where.consume ? data : (where.into ?? new Float32Array(data.length));
    const keepWq = !where.consume && where.into === undefined;
    const qz = await quantizeInto(input, s, keepWq || where.consume ? new Float32Array(data.length) : e, signal);
    stepFit = qz.stepFit;
    if (keepWq) wq = qz.wq;
    throwIfCancelled(signal);
    norms = errorPass(data, qz.wq, e, out, nIn, weightColumns);
  }
  throwIfCancelled(signal);
  const { scale, chol, ridge } = await scaleFor(METHODS[s.method].scale, input.calibration, nIn, s.ridge, signal);
  return { ...norms, wq, error: mat(e, out, nIn), scale, chol, ridge, stepFit };
}

interface MethodScale {
  /** Diagonal scale on the input dimension, or null. */
  scale: Float64Array | null;
  /** Lower Cholesky factor L of R_xx + δI, or null. */
  chol: Mat<Float64Array> | null;
  /** δ actually added to R_xx's diagonal (QERA-exact), or null. */
  ridge: number | null;
}

/** The method's scale S from the layer's statistics (their presence is checked before analysis). */
async function scaleFor(
  kind: ScaleKind,
  c: LayerCalibration | undefined,
  nIn: number,
  relativeRidge: number | undefined,
  signal: AbortSignal | undefined,
): Promise<MethodScale> {
  switch (kind) {
    case 'none':
      return { scale: null, chol: null, ridge: null };
    case 'mean-abs':
      return { scale: l2qerScale(c!.meanAbs!), chol: null, ridge: null };
    case 'rms':
      return { scale: qeraApproxScale(c!.rms!), chol: null, ridge: null };
    case 'cholesky': {
      const R = mat(c!.gram!, nIn, nIn);
      let rel = relativeRidge ?? DEFAULT_RIDGE;
      let chol: Mat<Float64Array>;
      for (;;) {
        try {
          chol = await cholesky(R, { relativeRidge: rel, signal });
          break;
        } catch (err) {
          if (!(err instanceof QuantLensError) || err.code !== 'bad-argument' || rel >= 1e-1) throw err;
          rel *= 10;
        }
      }
      let meanDiag = 0;
      for (let i = 0; i < nIn; i++) meanDiag += c!.gram![i * nIn + i]!;
      return { scale: null, chol, ridge: (rel * meanDiag) / nIn };
    }
  }
}

/** The storage record of llama.cpp weight formats (empty for the others). */
function ggmlReport(weightFormat: string, nIn: number): { ggml?: GgmlStorage } {
  const f = parseFormat(weightFormat);
  return f.kind === 'ggml' ? { ggml: ggmlStorage(f, nIn) } : {};
}

/**
 * llama.cpp's importance matrix for a layer: the mean of x² of each input channel, i.e. act_rms²
 * (or the diagonal of the Gram matrix E[x xᵀ] when only that was recorded).
 */
export function importanceOf(c: LayerCalibration | undefined, nIn: number): Float32Array | null {
  if (c?.rms && c.rms.length === nIn) return Float32Array.from(c.rms, (v) => v * v);
  if (c?.gram && c.gram.length === nIn * nIn)
    return Float32Array.from({ length: nIn }, (_, i) => c.gram![i * nIn + i]!);
  return null;
}

/** Quantizes W and prepares the error, keeping W_q (export and evaluation need it). */
export async function prepareLayer(
  input: LayerInput,
  s: AnalysisSettings,
  signal?: AbortSignal,
): Promise<PreparedLayer & { wq: Float32Array }> {
  const p = await prepareError(input, s, signal);
  return { ...p, wq: p.wq! };
}

/**
 * Nᵀ for the matrix N = M'ᵀ [out, in] the method decomposes, when it differs from E by more than a
 * column scale (QERA-exact: M' = Lᵀ·E', so N = E·L); float32, as the randomized SVD runs there.
 */
async function whitenedError(p: PreparedLayer): Promise<Mat<Float32Array>> {
  const L = mat(Float32Array.from(p.chol!.data), p.chol!.rows, p.chol!.cols);
  return kernels().matmul(p.error, L);
}

export interface Factors {
  /** A [in, R], B [R, out], unquantized. */
  A: Mat<Float64Array>;
  B: Mat<Float64Array>;
  sigma: Float64Array;
  residual: number;
  /** ‖M‖_F of the matrix decomposed, so that Σ_{i>k} σᵢ² = ‖M‖² − Σ_{i≤k} σᵢ² for k ≤ R. */
  frobenius: number;
  /** The randomized SVD's Ritz values past rank R (hints at the spectrum's shape). */
  ritz: Float64Array;
  /** M's top singular vectors from that SVD (a deflated spectrum of M splits them off). */
  vectors?: TopVectors;
}

/**
 * Top-R factors of the method: A = S⁻¹U (or L⁻ᵀU), B = Σ Vᵀ, for M = S·E' (or Lᵀ·E'). The
 * randomized SVD works on Mᵀ = E·S in E's stored layout, with the scale folded into its thin
 * products, and runs in float32: the factors are quantized to 8 bits or fewer afterwards.
 */
export async function computeFactors(p: PreparedLayer, rank: number, signal?: AbortSignal): Promise<Factors> {
  const E = p.error;
  const nOut = E.rows;
  const nIn = E.cols;
  const empty = new Float64Array(0);
  if (rank === 0)
    return {
      A: mat(empty, nIn, 0),
      B: mat(empty, 0, nOut),
      sigma: empty,
      residual: 0,
      frobenius: 0,
      ritz: empty,
    };
  // A zero error (a weight the format represents exactly, e.g. all zeros) has nothing to correct,
  // and the randomized SVD cannot orthonormalize a zero sample: its best rank-k factors are zero.
  if (p.errorSq === 0) {
    return {
      A: mat(new Float64Array(nIn * rank), nIn, rank),
      B: mat(new Float64Array(rank * nOut), rank, nOut),
      sigma: new Float64Array(rank),
      residual: 0,
      frobenius: 0,
      ritz: new Float64Array(rank),
    };
  }
  const t = p.chol
    ? await topSingularTriplets(await whitenedError(p), rank, { signal })
    : await topSingularTriplets(E, rank, {
        signal,
        // The error pass summed E² per column already: ‖E·S‖_F needs no pass over E.
        columnSq: p.errorColumnSq,
        ...(p.scale ? { columnScale: p.scale } : {}),
      });
  // SVD of Mᵀ = U_N Σ V_Nᵀ: M's left vectors are V_N, its right ones U_N.
  const U = new Float64Array(nIn * rank);
  for (let j = 0; j < rank; j++) {
    const row = j * nIn;
    for (let i = 0; i < nIn; i++) U[i * rank + j] = t.vt.data[row + i]!;
  }
  let A: Mat<Float64Array>;
  if (p.chol) A = await solveTriangular(p.chol, mat(U, nIn, rank), { transpose: true, signal });
  else if (p.scale) {
    for (let i = 0; i < nIn; i++) {
      const inv = 1 / p.scale[i]!;
      for (let j = 0; j < rank; j++) U[i * rank + j]! *= inv;
    }
    A = mat(U, nIn, rank);
  } else A = mat(U, nIn, rank);
  const b = new Float64Array(rank * nOut);
  for (let o = 0; o < nOut; o++) {
    for (let j = 0; j < rank; j++) b[j * nOut + o] = t.sigma[j]! * t.u.data[o * rank + j]!;
  }
  return {
    A,
    B: mat(b, rank, nOut),
    sigma: t.sigma,
    residual: t.residual,
    frobenius: t.frobenius,
    ritz: t.ritz,
    vectors: { u: t.u, vt: t.vt, frobenius: t.frobenius },
  };
}

/** Metric weights: identity for the weight error; R or diag(rms²) for the output error. */
function outputWeight(input: LayerInput): { weight: MetricWeight | null; kind: OutputErrorKind } {
  const c = input.calibration;
  if (c?.gram) return { weight: { kind: 'dense', R: mat(c.gram, input.in, input.in) }, kind: 'exact' };
  if (c?.rms)
    return { weight: { kind: 'diagonal', d: Float64Array.from(c.rms, (v) => v * v) }, kind: 'diagonal-estimate' };
  return { weight: null, kind: null };
}

function objectiveWeight(p: PreparedLayer, input: LayerInput): MetricWeight {
  if (p.chol) return { kind: 'dense', R: mat(input.calibration!.gram!, input.in, input.in) };
  if (p.scale) return { kind: 'diagonal', d: p.scale.map((v) => v * v) };
  return { kind: 'identity' };
}

/** ‖W'‖²_Q for the identity or a diagonal Q, from the per-channel sums of the error pass. */
function diagonalNorm(w: MetricWeight, p: PreparedLayer): number {
  if (w.kind !== 'diagonal' || !p.weightColumnSq) return p.weightSq;
  let s = 0;
  for (let i = 0; i < w.d.length; i++) s += w.d[i]! * p.weightColumnSq[i]!;
  return s;
}

function tailEnergy(sigma: Float64Array, R: number): Float64Array {
  const out = new Float64Array(R + 1);
  let total = 0;
  for (let i = sigma.length - 1; i >= 0; i--) total += sigma[i]! ** 2;
  let acc = total;
  for (let k = 0; k <= R; k++) {
    out[k] = Math.max(0, acc);
    if (k < sigma.length) acc -= sigma[k]! ** 2;
  }
  return out;
}

/** Σ_{i>k} σᵢ² for k ≤ R from the top values and the total energy ‖M‖²_F. */
function tailFromTop(sigma: Float64Array, totalSq: number, R: number): Float64Array {
  const out = new Float64Array(R + 1);
  let acc = totalSq;
  for (let k = 0; k <= R; k++) {
    out[k] = Math.max(0, acc);
    if (k < sigma.length) acc -= sigma[k]! ** 2;
  }
  return out;
}

/** Rank the first result of a progressive analysis covers at least (the slider's current rank may ask more). */
export const FIRST_RANK = 64;

/**
 * Order from which the spectra may use float32 arithmetic. Below it the float64 route costs
 * little, and the acceptance test below would look at the smallest values of a small matrix.
 */
const FLOAT32_MIN_ORDER = 512;

/**
 * The routes to a spectrum, fastest first, and what each may cost in accuracy. The spectra must
 * hold: top 64 σ within 1e-4 relative of float64 LAPACK, all σ within 1e-3·σ₁. A float32 stage
 * perturbs the Gram G = MᵀM by ΔG with ‖ΔG‖₂ ≤ κ·u₃₂·λ₁ (measured, noise-like and
 * outlier-scaled MXINT4 errors of 4096² and 14336×4096 layers: κ ≈ 2.3–3.7 for the float32 Gram,
 * and the float32 reduction adds about as much), so by Weyl every λᵢ moves by at most κ·u₃₂·λ₁:
 * - all σ: √(κ·u₃₂)·σ₁ ≤ 1e-3·σ₁ for κ ≤ 16;
 * - σᵢ relative: κ·u₃₂/2·(σ₁/σᵢ)² ≤ 1e-4, i.e. σ₆₄ ≥ √(κ·u₃₂/2e-4)·σ₁.
 * κ is taken at 16 (float32 Gram and reduction) and 8 (float32 Gram only), 4–5× the measured
 * norms, so a spectrum whose σ₆₄/σ₁ is below the route's bound is recomputed by the next route.
 * The actual errors are far smaller (first-order shifts vᵢᵀΔGvᵢ average the rounding errors out:
 * 7e-7 relative on the top 64 and 2e-5·σ₁ on all σ for the outlier-scaled error), but on a
 * spectrum that decays steeply they do reach the bound (a few dominant values at 100× the rest:
 * 1.6e-3 relative on σ₆₄ with the float32 reduction), which is why the bound is enforced.
 */
export interface SpectrumRoute {
  gram: 'float32' | 'float64';
  reduction: 'float32' | 'float64';
  /** Smallest σ_min(64,n)/σ₁ for which this route meets the bars. */
  minRatio: number;
}

/*
 * Besides SPECTRUM_ROUTES, 'deflated' (linalg/deflated-spectrum.ts): a spectrum too steep for the
 * fastest route whose steepness is a cliff after a few dominant values has them split off first,
 * and the float32 Gram and reduction then see only the remainder. Taken before the float64
 * reductions when the spectrum's estimate shows such a cliff, and kept only where its per-value
 * bounds meet the bars.
 */

/** Most values a deflated spectrum splits off (its randomized SVD and products grow with them). */
const DEFLATION_MAX_RANK = 64;

/** Whether per-value bounds certify the bars: top 64 within 1e-4 relative, all within 1e-3·σ₁. */
export function boundsMeetBars(d: Pick<DeflatedSpectrum, 'sigma' | 'bound'>): boolean {
  const { sigma, bound } = d;
  if (sigma.length === 0) return true;
  // The bars are relative to the exact values, which are at least σ̂ − bound.
  const floor1 = 1e-3 * (sigma[0]! - bound[0]!);
  for (let i = 0; i < sigma.length; i++) {
    const b = bound[i]!;
    if (!(b <= floor1)) return false;
    if (i < 64 && !(b <= 1e-4 * (sigma[i]! - b))) return false;
  }
  return true;
}

/**
 * The cliff to split off for a deflated spectrum, from an estimate of the spectrum: a failed
 * route's result, or the randomized SVD's Ritz values, of which only the first three quarters are
 * trusted here (the last few of a subspace fall off steeply and would fake a cliff).
 */
function deflationCliff(estimate: Float64Array, fromRitz: boolean) {
  const usable = fromRitz ? estimate.subarray(0, Math.floor(0.75 * estimate.length)) : estimate;
  return findCliff(usable, {
    maxRank: DEFLATION_MAX_RANK,
    remainderRatio: SPECTRUM_ROUTES[0]!.minRatio,
  });
}

const ratioBound = (kappa: number) => Math.sqrt((kappa * U32) / 2e-4);
export const SPECTRUM_ROUTES: readonly SpectrumRoute[] = [
  { gram: 'float32', reduction: 'float32', minRatio: ratioBound(FLOAT32_KAPPA) },
  { gram: 'float32', reduction: 'float64', minRatio: ratioBound(FLOAT32_KAPPA / 2) },
  { gram: 'float64', reduction: 'float64', minRatio: 0 },
];

/** σ_min(64,n)/σ₁ of a descending spectrum (1 for an empty or zero one). */
export function topRatio(sigma: Float64Array): number {
  if (sigma.length === 0 || !(sigma[0]! > 0)) return 1;
  return sigma[Math.min(64, sigma.length) - 1]! / sigma[0]!;
}

/**
 * The first route to try for a spectrum of order n. `hint` holds estimates of its top values
 * (the randomized SVD's Ritz values, which are at most the true ones, so the ratio errs low):
 * a spectrum known to decay too steeply skips the routes that would be redone.
 */
export function firstRoute(n: number, hint?: Float64Array): number {
  if (n < FLOAT32_MIN_ORDER) return SPECTRUM_ROUTES.length - 1;
  if (!hint || hint.length < Math.min(64, n)) return 0;
  const r = topRatio(hint);
  const i = SPECTRUM_ROUTES.findIndex((route) => r >= route.minRatio);
  return i < 0 ? SPECTRUM_ROUTES.length - 1 : i;
}

interface Stage {
  R: number;
  factors: Factors;
  curves: RankCurve[];
}

export async function analyzeLayer(
  input: LayerInput,
  s: AnalysisSettings,
  opts: AnalyzeOptions = {},
): Promise<LayerAnalysis> {
  checkSettings(s, input);
  const { signal } = opts;
  const report = opts.onProgress ?? (() => undefined);
  const { timings, time } = stageTimer(signal);
  const minDim = Math.min(input.out, input.in);
  const fac = factorFormats(s.factorFormat, s.factorTiling);
  const rankTile = Math.max(fac.aRankTile, fac.bRankTile);
  const R = appliedRank(s.method, Math.min(minDim, s.maxRank));
  // Decompose up to the next whole tile so that full tiles below any k are quantized as at rank R.
  const decompositionRank = (r: number) => Math.min(minDim, Math.ceil(r / rankTile) * rankTile);
  const spectra = s.spectra !== false;
  const scaled = isScaled(s.method);
  const ws = opts.workspace ?? sharedWorkspace();
  ws.forgetTags();

  report(0, 'quantize');
  const out = outputWeight(input);
  // A dense output metric needs W itself, which E may replace below.
  const outR = out.weight?.kind === 'dense' ? out.weight.R : null;
  const denseOutputSq = outR
    ? await time('norms', () => denseQuadratic(mat(input.data, input.out, input.in), outR, signal))
    : null;
  if (opts.errorPass && !opts.consumeWeight)
    throw new Error('analyzeLayer: an error pass started on the weight needs consumeWeight');
  if (opts.errorPass) checkPass(opts.errorPass, input, s);
  const where = opts.consumeWeight
    ? { consume: true, ...(opts.errorPass ? { streamed: opts.errorPass } : {}) }
    : { into: ws.f32('analysis-error', input.data.length) };
  const p = await time('quantize', () => prepareError(input, s, signal, where));
  if (p.nonFinite > 0) {
    // E is NaN wherever W is not finite, and so is every spectrum, factor and curve made from it.
    throw new QuantLensError(
      'malformed',
      `${input.name} holds ${p.nonFinite} NaN or infinite weight${p.nonFinite === 1 ? '' : 's'}: its quantization error cannot be analysed`,
      input.file,
    );
  }
  // A square E's Gram is taken as E·Eᵀ, whose operand is E itself (no transposed copy: 0.25–0.35 s
  // less at 4096²), unless the scaled spectrum reuses it as diag(s)·EᵀE·diag(s).
  const grams = gramCache(p.error, time, signal, scaled && !p.chol ? 'auto' : 'rows-if-square', ws);
  // With two spectra to compute and no partial results to hurry, the reduction of E's spectrum
  // starts on the helper thread now and runs beside the factors, the curves and the scaled
  // spectrum. A lone spectrum stays here: the helper's reduction beside the factors and curves took
  // longer than the two one after the other (LQER, 4096²: Gram + spectrum 3.9 s against 3.8 s).
  const plainEarly =
    spectra && scaled && !opts.onPartial && offloadsPlain(opts, p.error)
      ? (await offloadPlain(opts.offload!, grams, signal)).pending
      : undefined;
  const objective = objectiveWeight(p, input);
  const weights: MetricWeight[] = [{ kind: 'identity' }];
  if (out.weight) weights.push(out.weight);
  weights.push(objective);
  const outputSq = out.weight ? (denseOutputSq ?? diagonalNorm(out.weight, p)) : null;
  const factorsQuantized = isQuantized(parseFormat(s.factorFormat));
  const aQuant: FactorQuantization = {
    quantize: (d, r, c) => fakeQuantize(d, r, c, fac.a),
    rankTile: fac.aRankTile,
  };
  const bQuant: FactorQuantization = {
    quantize: (d, r, c) => fakeQuantize(d, r, c, fac.b),
    rankTile: fac.bRankTile,
  };

  const stage = async (rank: number, from: number, to: number): Promise<Stage> => {
    report(from, 'factors');
    const factors = await time('factors', () => computeFactors(p, decompositionRank(rank), signal));
    report(from + 0.6 * (to - from), 'error curves');
    const curves = await time('curves', () =>
      rankCurves(
        {
          error: p.error,
          columnSq: p.errorColumnSq,
          A: factors.A,
          B: factors.B,
          ...(factorsQuantized ? { aQuant, bQuant } : {}),
          signal,
        },
        weights,
      ),
    );
    // Rounding leaves full-rank errors a hair below zero; a real negative eigenvalue shows far below.
    const floor = -1e-6 * Math.abs(outputSq ?? 0);
    if ((outputSq !== null && outputSq < 0) || (out.weight && curves[1]!.errSq.some((v) => v < floor))) {
      // A Gram that passes the statistics file's O(n²) checks yet has a negative eigenvalue.
      throw new QuantLensError(
        'malformed',
        `${input.name}.act_gram is not positive semi-definite: the output error tr(ΔW·R·ΔWᵀ) comes out negative; recalibrate`,
      );
    }
    return { R: rank, factors, curves };
  };

  const assemble = (
    st: Stage,
    sigmaPlain: Float64Array,
    sigmaScaled: Float64Array,
    fullSpectra: boolean,
    preview: LayerAnalysis['preview'],
    routes?: LayerAnalysis['spectrumRoutes'],
  ): LayerAnalysis => {
    const cut = (a: Float64Array) => a.slice(0, st.R + 1);
    const Rdec = st.factors.sigma.length;
    const energy = st.factors.frobenius ** 2;
    const objectiveIdeal = fullSpectra
      ? tailEnergy(sigmaScaled, st.R)
      : Rdec > 0 || st.R === 0
        ? tailFromTop(st.factors.sigma, st.R === 0 ? st.curves[st.curves.length - 1]!.base : energy, st.R)
        : cut(st.curves[st.curves.length - 1]!.errSq);
    return {
      name: input.name,
      shape: [input.out, input.in],
      method: s.method,
      weightFormat: formatToString(parseFormat(s.weightFormat)),
      factorFormat: formatToString(parseFormat(s.factorFormat)),
      factorTiling: s.factorTiling,
      maxRank: st.R,
      sigmaPlain,
      sigmaScaled,
      scale: p.scale,
      activation: {
        meanAbs: input.calibration?.meanAbs ?? null,
        rms: input.calibration?.rms ?? null,
        tokens: input.calibration?.tokens ?? null,
      },
      norms: { weightSq: p.weightSq, errorSq: p.errorSq, outputSq },
      curves: {
        weightErrSq: cut(st.curves[0]!.errSq),
        outputErrSq: out.weight ? cut(st.curves[1]!.errSq) : null,
        objectiveErrSq: cut(st.curves[st.curves.length - 1]!.errSq),
        objectiveIdealSq: objectiveIdeal,
      },
      outputErrorKind: out.kind,
      factorResidual:
        Rdec > 0
          ? {
              achieved: st.factors.residual,
              optimal: fullSpectra ? Math.sqrt(tailEnergy(sigmaScaled, Rdec)[Rdec]!) : null,
            }
          : null,
      ridge: p.ridge,
      nonFinite: p.nonFinite,
      ...(p.stepFit ? { stepFit: p.stepFit } : {}),
      ...ggmlReport(s.weightFormat, input.in),
      ...(preview ? { preview } : {}),
      ...(routes ? { spectrumRoutes: routes } : {}),
      timings: { ...timings },
    };
  };

  // First result (progressive analysis): curves to a small rank and the top of both spectra.
  let first: Stage | undefined;
  let firstTopPlain: Float64Array | undefined;
  let plainRitz: Float64Array | undefined;
  const firstRank = Math.min(R, Math.max(FIRST_RANK, opts.firstRank ?? 0));
  if (opts.onPartial && (firstRank < R || spectra)) {
    first = await stage(firstRank, 0.05, 0.25);
    const topScaled = first.factors.sigma;
    let topPlain = topScaled;
    if (scaled && spectra && p.errorSq > 0 && firstRank > 0) {
      report(0.25, 'top of the spectrum of E');
      const t = await time('factors', () =>
        topSingularTriplets(p.error, decompositionRank(firstRank), { signal, columnSq: p.errorColumnSq }),
      );
      topPlain = t.sigma;
      plainRitz = t.ritz;
    }
    firstTopPlain = topPlain;
    opts.onPartial(
      assemble(first, spectra ? topPlain : new Float64Array(0), spectra ? topScaled : new Float64Array(0), false, {
        finalMaxRank: R,
        spectra,
      }),
    );
  }
  const full = first && first.R === R ? first : await stage(R, first ? 0.3 : 0.05, first ? 0.45 : 0.2);
  if (!spectra) {
    report(1, 'done');
    return assemble(full, new Float64Array(0), new Float64Array(0), false, undefined);
  }
  if (opts.onPartial && full !== first) {
    // The curves are complete; the spectra are still coming.
    const top = full.factors.sigma;
    opts.onPartial(
      assemble(full, scaled ? (firstTopPlain ?? top) : top, top, false, { finalMaxRank: R, spectra: true }),
    );
  }
  // The Ritz values of the method's matrix (the longer set when there were two stages).
  const methodRitz =
    first && first.factors.ritz.length > full.factors.ritz.length ? first.factors.ritz : full.factors.ritz;
  const routes: Partial<Record<'plain' | 'scaled', SpectrumRouteName>> = {};
  const { sigmaPlain, sigmaScaled } = await layerSpectra(p, scaled, grams, {
    signal,
    time,
    workspace: ws,
    ...(opts.offload ? { offload: opts.offload } : {}),
    ...(opts.turn ? { turn: opts.turn } : {}),
    ...(opts.offloadBand ? { offloadBand: opts.offloadBand } : {}),
    ...(plainEarly ? { plainEarly } : {}),
    onProgress: (f, step) => report(0.45 + 0.55 * f, step),
    hints: scaled ? { scaled: methodRitz, ...(plainRitz ? { plain: plainRitz } : {}) } : { plain: methodRitz },
    ...(full.factors.vectors ? { methodVectors: full.factors.vectors } : {}),
    onRoute: (which, route) => {
      routes[which] = route;
      opts.onSpectrumRoute?.(which, route);
    },
  });
  report(1, 'done');
  // A method without a scaled spectrum reports E's route for both (its sigmaScaled is σ(E)).
  const plainRoute = routes.plain ?? 'float64/float64';
  return assemble(full, sigmaPlain, sigmaScaled, true, undefined, {
    plain: plainRoute,
    scaled: routes.scaled ?? plainRoute,
  });
}

interface SpectraOptions {
  signal?: AbortSignal;
  time: <T>(label: string, f: () => Promise<T> | T) => Promise<T>;
  onProgress: (fraction: number, step: string) => void;
  /** Ritz values of E and of the scaled error, when the randomized SVD has them (see firstRoute). */
  hints: { plain?: Float64Array; scaled?: Float64Array };
  onRoute?: AnalyzeOptions['onSpectrumRoute'];
  offload?: EigenvalueOffload;
  offloadBand?: BandEigenvalueOffload;
  turn?: ThreadTurn;
  workspace: Workspace;
  /** E's spectrum, already being reduced on the helper thread. */
  plainEarly?: Offloaded;
  /**
   * Top singular vectors of the method's matrix from its factors (E's own for LQER): a deflated
   * spectrum of that matrix takes its subspace from them instead of a randomized SVD of its own.
   */
  methodVectors?: TopVectors;
}

interface GramCache {
  /** The Gram of E in the given precision, formed once. */
  get(precision: 'float32' | 'float64'): Promise<Gram>;
  /** Forgets a Gram whose storage a reduction is about to use as scratch. */
  drop(precision: 'float32' | 'float64'): void;
}

function gramCache(
  E: Mat<Float32Array>,
  time: <T>(label: string, f: () => Promise<T> | T) => Promise<T>,
  signal: AbortSignal | undefined,
  sides: 'auto' | 'rows-if-square',
  ws: Workspace,
): GramCache {
  const n = Math.min(E.rows, E.cols);
  const side = sides === 'rows-if-square' && E.rows === E.cols ? 'rows' : 'auto';
  const grams: Partial<Record<'float32' | 'float64', Gram>> = {};
  return {
    async get(precision) {
      const have = grams[precision];
      if (have) return have;
      const out = precision === 'float32' ? ws.f32('analysis-gram32', n * n) : ws.f64('analysis-gram', n * n);
      const g = await time('gram', () => gram(E, { signal, out, precision, side, workspace: ws }));
      grams[precision] = g;
      return g;
    },
    drop(precision) {
      delete grams[precision];
    },
  };
}

/** Whether E's spectrum goes to the helper thread: where its first route is the float32 one. */
function offloadsPlain(o: { offload?: EigenvalueOffload }, E: Mat, hint?: Float64Array): boolean {
  const n = Math.min(E.rows, E.cols);
  return !!o.offload && n >= FLOAT32_MIN_ORDER && firstRoute(n, hint) === 0;
}

/** Hands E's float32 Gram to the helper thread (the Gram stays here, for the scaled spectrum). */
async function offloadPlain(
  offload: EigenvalueOffload,
  grams: GramCache,
  signal?: AbortSignal,
): Promise<{ pending: Offloaded }> {
  const g = await grams.get('float32');
  // Wrapped: an async function would otherwise wait for the promise it returns.
  const pending = offload(g.matrix.data as Float32Array, g.matrix.rows, signal).then(
    (values) => ({ values }),
    (error: unknown) => ({ error }),
  );
  return { pending };
}

/**
 * Both spectra of a layer: σ(E) and σ of the method's scaled error, each by the fastest route of
 * SPECTRUM_ROUTES that its own result shows to be accurate enough. One Gram of each precision
 * serves both spectra where it can (diag(s)·EᵀE·diag(s) on the input side).
 */
async function layerSpectra(
  p: PreparedLayer,
  scaled: boolean,
  grams: GramCache,
  o: SpectraOptions,
): Promise<{ sigmaPlain: Float64Array; sigmaScaled: Float64Array }> {
  const { signal, time, workspace } = o;
  const E = p.error;
  const n = Math.min(E.rows, E.cols);
  // The scaled reduction's band goes to the helper when another analysis waits for this thread.
  const turn = o.turn;
  const offloadBand = o.offloadBand;
  const bandElsewhere: BandOffload | undefined =
    turn && offloadBand ? (band, sig) => (turn.contended ? turn.away(offloadBand(band, sig)) : null) : undefined;
  const scaledBand = bandElsewhere ? { bandElsewhere } : {};
  const gramOf = (precision: 'float32' | 'float64') => grams.get(precision);
  let whitened: Mat<Float32Array> | undefined;
  /**
   * The first route that meets the bars, fastest first. Before a float64 reduction, a spectrum
   * whose estimate (the hint, or the result of a route that failed) has a cliff is tried deflated.
   */
  const byRoutes = async (
    which: 'plain' | 'scaled',
    hint: Float64Array | undefined,
    compute: (route: SpectrumRoute) => Promise<Float64Array>,
    deflated: (cliff: NonNullable<ReturnType<typeof deflationCliff>>) => Promise<DeflatedSpectrum>,
    from?: { route: number; estimate: Float64Array },
  ): Promise<Float64Array> => {
    let estimate = from ? { values: from.estimate, ritz: false } : hint ? { values: hint, ritz: true } : undefined;
    let triedDeflation = n < FLOAT32_MIN_ORDER;
    for (let i = from ? from.route : firstRoute(n, hint); ; i++) {
      const route = SPECTRUM_ROUTES[i]!;
      if (route.reduction === 'float64' && !triedDeflation && estimate) {
        triedDeflation = true;
        const cliff = deflationCliff(estimate.values, estimate.ritz);
        if (cliff) {
          const d = await time('spectrum', () => deflated(cliff));
          if (boundsMeetBars(d)) {
            o.onRoute?.(which, 'deflated');
            return d.sigma;
          }
        }
      }
      const sigma = await time('spectrum', () => compute(route));
      if (i === SPECTRUM_ROUTES.length - 1 || topRatio(sigma) >= route.minRatio) {
        o.onRoute?.(which, `${route.gram}/${route.reduction}`);
        return sigma;
      }
      estimate = { values: sigma, ritz: false };
    }
  };
  // The scaled spectrum reuses the plain one's Gram only as diag(s)·EᵀE·diag(s) (input side, no
  // Cholesky factor); otherwise the plain reduction may run in the Gram itself, saving an n² copy
  // (and its fresh memory). A route retried after that forms its Gram again.
  const gramKept = scaled && !p.chol && resolveSide(E.rows, E.cols) === 'columns';
  // With a helper thread, E's spectrum is reduced there while this thread does the scaled one.
  const offloaded =
    o.plainEarly ??
    (scaled && o.offload && offloadsPlain(o, E, o.hints.plain)
      ? (await offloadPlain(o.offload, grams, signal)).pending
      : undefined);
  const plainHere = (from?: { route: number; estimate: Float64Array }) =>
    byRoutes(
      'plain',
      o.hints.plain,
      async (route) => {
        const g = await gramOf(route.gram);
        const overwrite = !gramKept && route.gram === route.reduction;
        if (overwrite) grams.drop(route.gram);
        return singularValuesFromGram(g, {
          signal,
          workspace,
          precision: route.reduction,
          overwrite,
          onProgress: (f) => o.onProgress(0.05 + 0.45 * f, 'spectrum of E'),
        });
      },
      (cliff) =>
        deflatedSingularValues(E, cliff.rank, {
          signal,
          workspace,
          drop: cliff.drop,
          onProgress: (f) => o.onProgress(0.05 + 0.45 * f, 'spectrum of E'),
          ...(!scaled && o.methodVectors ? { subspace: o.methodVectors } : {}),
        }),
      from,
    );
  /** E's spectrum from the helper thread, checked like any route's (and recomputed here if it fails). */
  const plainOffloaded = async (pending: Offloaded): Promise<Float64Array> => {
    const r = await time('spectrum', () => (turn ? turn.away(pending) : pending));
    if (!r.values) {
      throwIfCancelled(signal);
      if (isQuantLensError(r.error) && r.error.code === 'cancelled') throw r.error;
      return plainHere();
    }
    const sigma = squareRoots(r.values, n);
    if (topRatio(sigma) >= SPECTRUM_ROUTES[0]!.minRatio) {
      o.onRoute?.('plain', 'float32/float32');
      return sigma;
    }
    return plainHere({ route: 1, estimate: sigma });
  };
  if (!scaled) {
    const sigma = offloaded ? await plainOffloaded(offloaded) : await plainHere();
    return { sigmaPlain: sigma, sigmaScaled: sigma };
  }
  const sigmaPlainHere = offloaded ? undefined : await plainHere();
  const onProgress = (f: number) =>
    offloaded
      ? o.onProgress(0.05 + 0.95 * f, 'spectra of E and of the scaled error')
      : o.onProgress(0.5 + 0.5 * f, 'spectrum of the scaled error');
  const sigmaScaled = await byRoutes(
    'scaled',
    o.hints.scaled,
    async (route) => {
      if (p.chol) {
        whitened ??= await whitenedError(p);
        return singularValues(whitened, {
          signal,
          workspace,
          onProgress,
          precision: route.gram,
          reduction: route.reduction,
          ...scaledBand,
        });
      }
      // On the input side the scaled Gram is diag(s)·EᵀE·diag(s): no second product needed.
      if (gramKept) {
        return singularValuesFromGram(await gramOf(route.gram), {
          scale: p.scale!,
          signal,
          workspace,
          onProgress,
          precision: route.reduction,
          ...scaledBand,
        });
      }
      return singularValues(E, {
        signal,
        workspace,
        onProgress,
        ...scaledBand,
        columnScale: p.scale!,
        precision: route.gram,
        reduction: route.reduction,
      });
    },
    async (cliff) => {
      const shared = {
        signal,
        workspace,
        onProgress,
        ...scaledBand,
        drop: cliff.drop,
        ...(o.methodVectors ? { subspace: o.methodVectors } : {}),
      };
      if (p.chol) {
        whitened ??= await whitenedError(p);
        return deflatedSingularValues(whitened, cliff.rank, shared);
      }
      return deflatedSingularValues(E, cliff.rank, { ...shared, columnScale: p.scale! });
    },
  );
  const sigmaPlain = sigmaPlainHere ?? (await plainOffloaded(offloaded!));
  return { sigmaPlain, sigmaScaled };
}
