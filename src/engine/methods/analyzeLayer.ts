/**
 * One linear layer, end to end: quantize W, form the error, scale it as the method says, take both
 * spectra and the top-R factors, and turn them into exact error curves for every rank k ≤ R.
 *
 * Conventions (algorithms.md §1): W is [out, in]; the code works on E' = Eᵀ [in, out]; a diagonal
 * scale s acts on the input dimension; A = S⁻¹U_R [in, R], B = Σ_R·V_Rᵀ [R, out]; Ŵ = W_q + (A·B)ᵀ.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import {
  cholesky,
  gram,
  kernels,
  mat,
  singularValues,
  singularValuesFromGram,
  sharedWorkspace,
  solveTriangular,
  topSingularTriplets,
  type Mat,
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
import { rankCurves, type FactorQuantization, type MetricWeight } from './rankCurves';
import { l2qerScale, qeraApproxScale } from './scales';
import { fitStepSizes, stepFitMetric, type StepFitSummary } from './stepFitting';
import type { AnalysisSettings, FactorTiling, LayerAnalysis, LayerCalibration, OutputErrorKind } from './layerAnalysis';

export type { AnalysisSettings, FactorTiling, LayerAnalysis, LayerCalibration, OutputErrorKind };

export interface LayerInput {
  name: string;
  data: Float32Array;
  out: number;
  in: number;
  calibration?: LayerCalibration;
}

export interface AnalyzeOptions {
  signal?: AbortSignal;
  onProgress?: (fraction: number, step: string) => void;
}

/** Default relative ridge for QERA-exact; raised ×10 until the Cholesky factor exists. */
export const DEFAULT_RIDGE = 1e-6;

export function parseWeightFormat(s: string): NumberFormat {
  return parseFormat(s);
}

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

function checkSettings(s: AnalysisSettings, input: LayerInput): void {
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

function transposeToF64(w: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const T = 64;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(rows, i0 + T);
    for (let j0 = 0; j0 < cols; j0 += T) {
      const j1 = Math.min(cols, j0 + T);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = w[i * cols + j]!;
    }
  }
  return out;
}

function sumSq(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}

/** Everything derived from W and the method before any decomposition. */
export interface PreparedLayer {
  wq: Float32Array;
  /** E' = (W − W_q)ᵀ, [in, out], float64. */
  errorT: Mat<Float64Array>;
  /** E = W − W_q, [out, in], float32 (for the Gram of the plain spectrum). */
  error: Mat<Float32Array>;
  scale: Float64Array | null;
  /** Cholesky factor of R + δI (QERA-exact). */
  chol: Mat<Float64Array> | null;
  ridge: number | null;
  nonFinite: number;
  /** How the step sizes were fitted, for `int…:fitted` weight formats (stepFitting.ts). */
  stepFit: StepFitSummary | null;
}

export async function prepareLayer(
  input: LayerInput,
  s: AnalysisSettings,
  signal?: AbortSignal,
): Promise<PreparedLayer> {
  const { out, in: nIn, data } = input;
  if (data.length !== out * nIn) throw new Error(`weight has ${data.length} values, expected ${out}×${nIn}`);
  const wFmt = parseFormat(s.weightFormat);
  let nonFinite = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) nonFinite++;
  let stepFit: StepFitSummary | null = null;
  let wq: Float32Array;
  if (!isQuantized(wFmt)) wq = Float32Array.from(data);
  else if (wFmt.kind === 'int' && wFmt.fitted) {
    // Fitted step sizes: the objective is the best error the layer's calibration supports.
    const fit = await fitStepSizes(data, out, nIn, wFmt, { ...stepFitMetric(input.calibration, nIn), signal });
    wq = fit.wq;
    stepFit = fit.summary;
  } else wq = fakeQuantize(data, out, nIn, wFmt);
  const e = new Float32Array(data.length);
  for (let i = 0; i < e.length; i++) e[i] = data[i]! - wq[i]!;
  const errorT = mat(transposeToF64(e, out, nIn), nIn, out);
  throwIfCancelled(signal);
  const { scale, chol, ridge } = await scaleFor(METHODS[s.method].scale, input.calibration, nIn, s.ridge, signal);
  return { wq, errorT, error: mat(e, out, nIn), scale, chol, ridge, nonFinite, stepFit };
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

/** M: the scaled error the method decomposes, [in, out]. */
async function scaledError(p: PreparedLayer): Promise<Mat<Float64Array>> {
  const E = p.errorT;
  if (p.chol) {
    // M = Lᵀ·E'
    return kernels().matmul(p.chol, E, { transA: true });
  }
  if (!p.scale) return E;
  const m = new Float64Array(E.data.length);
  for (let i = 0; i < E.rows; i++) {
    const s = p.scale[i]!;
    for (let j = 0; j < E.cols; j++) m[i * E.cols + j] = s * E.data[i * E.cols + j]!;
  }
  return mat(m, E.rows, E.cols);
}

export interface Factors {
  /** A [in, R], B [R, out], unquantized. */
  A: Mat<Float64Array>;
  B: Mat<Float64Array>;
  sigma: Float64Array;
  residual: number;
}

/** Top-R factors of the method: A = S⁻¹U (or L⁻ᵀU), B = Σ Vᵀ. */
export async function computeFactors(p: PreparedLayer, rank: number, signal?: AbortSignal): Promise<Factors> {
  const M = await scaledError(p);
  const nIn = M.rows;
  const nOut = M.cols;
  if (rank === 0)
    return {
      A: mat(new Float64Array(0), nIn, 0),
      B: mat(new Float64Array(0), 0, nOut),
      sigma: new Float64Array(0),
      residual: 0,
    };
  // A zero error (a weight the format represents exactly, e.g. all zeros) has nothing to correct,
  // and the randomized SVD cannot orthonormalize a zero sample: its best rank-k factors are zero.
  if (M.data.every((v) => v === 0)) {
    return {
      A: mat(new Float64Array(nIn * rank), nIn, rank),
      B: mat(new Float64Array(rank * nOut), rank, nOut),
      sigma: new Float64Array(rank),
      residual: 0,
    };
  }
  // The randomized SVD runs in float32: the factors are quantized to 8 bits or fewer afterwards.
  const M32 = mat(Float32Array.from(M.data), nIn, nOut);
  const t = await topSingularTriplets(M32, rank, { signal });
  const U = mat(Float64Array.from(t.u.data), nIn, rank);
  let A: Mat<Float64Array>;
  if (p.chol) A = await solveTriangular(p.chol, U, { transpose: true, signal });
  else if (p.scale) {
    const a = new Float64Array(U.data.length);
    for (let i = 0; i < nIn; i++) {
      const inv = 1 / p.scale[i]!;
      for (let j = 0; j < rank; j++) a[i * rank + j] = inv * U.data[i * rank + j]!;
    }
    A = mat(a, nIn, rank);
  } else A = U;
  const b = new Float64Array(rank * nOut);
  for (let j = 0; j < rank; j++) {
    const sj = t.sigma[j]!;
    for (let c = 0; c < nOut; c++) b[j * nOut + c] = sj * t.vt.data[j * nOut + c]!;
  }
  return { A, B: mat(b, rank, nOut), sigma: t.sigma, residual: t.residual };
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

async function weightedNorm(w: MetricWeight, xT: Mat<Float64Array>): Promise<number> {
  if (w.kind === 'identity') return sumSq(xT.data);
  if (w.kind === 'diagonal') {
    let s = 0;
    for (let i = 0; i < xT.rows; i++) {
      let r = 0;
      for (let j = 0; j < xT.cols; j++) r += xT.data[i * xT.cols + j]! ** 2;
      s += w.d[i]! * r;
    }
    return s;
  }
  const RX = await kernels().matmul(w.R, xT);
  let s = 0;
  for (let i = 0; i < xT.data.length; i++) s += xT.data[i]! * RX.data[i]!;
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

export async function analyzeLayer(
  input: LayerInput,
  s: AnalysisSettings,
  opts: AnalyzeOptions = {},
): Promise<LayerAnalysis> {
  checkSettings(s, input);
  const { signal } = opts;
  const report = opts.onProgress ?? (() => undefined);
  const timings: Record<string, number> = {};
  const time = async <T>(label: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    timings[label] = (timings[label] ?? 0) + performance.now() - t0;
    throwIfCancelled(signal);
    return r;
  };
  const minDim = Math.min(input.out, input.in);
  const fac = factorFormats(s.factorFormat, s.factorTiling);
  const rankTile = Math.max(fac.aRankTile, fac.bRankTile);
  const R = appliedRank(s.method, Math.min(minDim, s.maxRank));
  // Decompose up to the next whole tile so that full tiles below any k are quantized as at rank R.
  const Rdec = Math.min(minDim, Math.ceil(R / rankTile) * rankTile);

  report(0, 'quantize');
  const p = await time('quantize', () => prepareLayer(input, s, signal));
  const scaled = isScaled(s.method);

  let sigmaPlain: Float64Array = new Float64Array(0);
  let sigmaScaled: Float64Array = new Float64Array(0);
  if (s.spectra !== false) {
    report(0.05, 'spectrum of E');
    // The Gram lives in the thread's workspace: the next layer of the same size reuses its pages.
    const n = Math.min(input.out, input.in);
    const g = await time('gram', () => gram(p.error, { signal, out: sharedWorkspace().f64('analysis-gram', n * n) }));
    sigmaPlain = await time('spectrum', () =>
      singularValuesFromGram(g, { signal, onProgress: (f) => report(0.05 + 0.4 * f, 'spectrum of E') }),
    );
    if (!scaled) sigmaScaled = sigmaPlain;
    else {
      report(0.45, 'spectrum of the scaled error');
      const onProgress = (f: number) => report(0.45 + 0.4 * f, 'spectrum of the scaled error');
      // On the input side the scaled Gram is diag(s)·EᵀE·diag(s): no second product needed.
      if (p.scale && g.side === 'columns') {
        sigmaScaled = await time('spectrum', () => singularValuesFromGram(g, { scale: p.scale!, signal, onProgress }));
      } else
        sigmaScaled = await time('spectrum', async () => singularValues(await scaledError(p), { signal, onProgress }));
    }
  }

  report(0.85, 'factors');
  const factors = await time('factors', () => computeFactors(p, Rdec, signal));
  const aQuant: FactorQuantization = {
    quantize: (d, r, c) => fakeQuantize(d, r, c, fac.a),
    rankTile: fac.aRankTile,
  };
  const bQuant: FactorQuantization = {
    quantize: (d, r, c) => fakeQuantize(d, r, c, fac.b),
    rankTile: fac.bRankTile,
  };
  const factorsQuantized = isQuantized(parseFormat(s.factorFormat));
  const out = outputWeight(input);
  const objective = objectiveWeight(p, input);
  const weights: MetricWeight[] = [{ kind: 'identity' }];
  if (out.weight) weights.push(out.weight);
  weights.push(objective);
  report(0.9, 'error curves');
  const curves = await time('curves', () =>
    rankCurves(
      {
        errorT: p.errorT,
        A: factors.A,
        B: factors.B,
        ...(factorsQuantized ? { aQuant, bQuant } : {}),
        signal,
      },
      weights,
    ),
  );
  const cut = (a: Float64Array) => a.slice(0, R + 1);
  const wT = mat(transposeToF64(input.data, input.out, input.in), input.in, input.out);
  const outputSq = out.weight ? await weightedNorm(out.weight, wT) : null;
  const objectiveIdeal = sigmaScaled.length ? tailEnergy(sigmaScaled, R) : cut(curves[curves.length - 1]!.errSq);
  report(1, 'done');
  return {
    name: input.name,
    shape: [input.out, input.in],
    method: s.method,
    weightFormat: formatToString(parseFormat(s.weightFormat)),
    factorFormat: formatToString(parseFormat(s.factorFormat)),
    factorTiling: s.factorTiling,
    maxRank: R,
    sigmaPlain,
    sigmaScaled,
    scale: p.scale,
    activation: {
      meanAbs: input.calibration?.meanAbs ?? null,
      rms: input.calibration?.rms ?? null,
      tokens: input.calibration?.tokens ?? null,
    },
    norms: { weightSq: sumSq(input.data), errorSq: sumSq(p.error.data), outputSq },
    curves: {
      weightErrSq: cut(curves[0]!.errSq),
      outputErrSq: out.weight ? cut(curves[1]!.errSq) : null,
      objectiveErrSq: cut(curves[curves.length - 1]!.errSq),
      objectiveIdealSq: objectiveIdeal,
    },
    outputErrorKind: out.kind,
    factorResidual:
      Rdec > 0
        ? {
            achieved: factors.residual,
            optimal: sigmaScaled.length ? Math.sqrt(tailEnergy(sigmaScaled, Rdec)[Rdec]!) : null,
          }
        : null,
    ridge: p.ridge,
    nonFinite: p.nonFinite,
    ...(p.stepFit ? { stepFit: p.stepFit } : {}),
    timings,
  };
}
