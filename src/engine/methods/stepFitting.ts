/**
 * Layer-local step-size fitting for the INT formats ("fitted step sizes", `int4:g128:fitted`).
 *
 * Inspired by SiLQ's learned step sizes (docs/algorithms.md §6), but it is not SiLQ: SiLQ is end-to-end
 * quantization-aware training with distillation. What runs here is the part that fits in an editor:
 * for one layer, choose each group's step Δ (per output row and group of input channels, the
 * format's tile) to minimise the layer's output error on calibration activations,
 *
 *   J(Ŵ) = tr((W − Ŵ)·R·(W − Ŵ)ᵀ),   R = E[x xᵀ] (act_gram; or samples' XᵀX/n),
 *
 * or, with less calibration, its diagonal estimate (R = diag(rms²)) or the weight error (R = I).
 *
 * Search (ours; the papers give no per-layer recipe): LSQ's initialisation s₀ = 2·mean|v|/√Q_P is
 * one starting point, the min/max (RTN) step the other; the fit starts from whichever has the
 * smaller J, so it is never worse than either. Then coordinate descent over the column groups,
 * all rows at once: for group b, every row tries a grid of steps, and the exact change of J is
 *
 *   ΔJ_o = 2·δᵀ(D·R)[o, b] + δᵀ·R_bb·δ,   δ = new − current error of row o on group b,
 *
 * (one GEMM per batch of candidates), and a row moves only when ΔJ_o < 0. So J never increases.
 * The first sweep scans 0.3…1.1 × the RTN step (and s₀); later sweeps refine ±8 % around the
 * current step. Asymmetric groups keep their range centred: z(Δ) = round((2ⁿ−1)/2 − c/Δ) with c
 * the group's (max+min)/2, which at the RTN step is RTN's own zero point; z is clamped to n bits.
 * The storage is that of the INT format (one scale, and a zero point when asymmetric, per group).
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { kernels, mat, type Mat } from '../linalg';
import { StepClock } from '../linalg/progress';
import { fakeQuantize, tileGrid, type IntFormat } from '../quantizers';
import type { MetricWeight } from './rankCurves';

import type { StepFitObjective, StepFitSummary } from './stepFitTypes';

export type { StepFitObjective, StepFitSummary };

export interface StepFitResult {
  /** Dequantized weight with the fitted steps, [out, in]. */
  wq: Float32Array;
  /** Step Δ per group, row-major [out, groupsPerRow]. */
  steps: Float32Array;
  /** Zero point per group (asymmetric formats), else null. */
  zeroPoints: Float32Array | null;
  groupsPerRow: number;
  summary: StepFitSummary;
}

export interface StepFitOptions {
  /** The metric over the input dimension: dense R, diag(rms²) or identity. */
  metric: MetricWeight;
  objective: StepFitObjective;
  /** Coordinate-descent sweeps (default 3). */
  sweeps?: number;
  signal?: AbortSignal;
}

const WIDE_GRID = Array.from({ length: 41 }, (_, i) => 0.3 + 0.02 * i); // 0.30 … 1.10 × RTN step
const FINE_GRID = Array.from({ length: 17 }, (_, i) => 0.92 + 0.01 * i); // 0.92 … 1.08 × current
/** Elements of the stacked candidate block handed to one GEMM. */
const STACK_ELEMENTS = 1 << 22;

/** The grid a group is quantized on: step Δ and, when asymmetric, zero point z. */
interface GroupGrid {
  qmin: number;
  qmax: number;
  symmetric: boolean;
}

function gridOf(f: IntFormat): GroupGrid {
  return f.symmetric
    ? { qmin: -(2 ** (f.bits - 1)), qmax: 2 ** (f.bits - 1) - 1, symmetric: true }
    : { qmin: 0, qmax: 2 ** f.bits - 1, symmetric: false };
}

/** Round half to even for |v| < 2^51 (the quantizers' convention). */
const MAGIC = 6755399441055744;

/** Zero point that keeps an asymmetric group's range centred on its midpoint c at step s. */
function centredZero(g: GroupGrid, centre: number, s: number): number {
  if (g.symmetric) return 0;
  const z = g.qmax / 2 - centre / s + MAGIC - MAGIC;
  return Math.min(g.qmax, Math.max(0, z));
}

/** Writes the group w[c0, c1) of one row quantized at (s, z) into out[c0, c1). */
function quantizeSegment(
  w: Float32Array,
  c0: number,
  c1: number,
  s: number,
  z: number,
  g: GroupGrid,
  out: Float32Array | Float64Array,
  outOffset: number,
): void {
  for (let i = c0; i < c1; i++) {
    let q = Math.fround(w[i]! / s) + MAGIC - MAGIC + z;
    if (q < g.qmin) q = g.qmin;
    else if (q > g.qmax) q = g.qmax;
    out[outOffset + i - c0] = Math.fround((q - z) * s);
  }
}

interface GroupStats {
  /** RTN step (0 for a constant group, which RTN reproduces exactly and the fit leaves alone). */
  rtnStep: Float64Array;
  centre: Float64Array;
  /** RTN's zero point round(−min/Δ) (asymmetric; as intGroup.ts computes it, not clamped). */
  rtnZero: Float64Array;
  /** LSQ initialisation 2·mean|v − c|/√Q_P (c = 0 when symmetric). */
  lsqStep: Float64Array;
}

function groupStats(w: Float32Array, out: number, nIn: number, width: number, f: IntFormat): GroupStats {
  const G = Math.ceil(nIn / width);
  const n = out * G;
  const rtnStep = new Float64Array(n);
  const centre = new Float64Array(n);
  const lsqStep = new Float64Array(n);
  const rtnZero = new Float64Array(n);
  const qp = f.symmetric ? 2 ** (f.bits - 1) - 1 : Math.max(1, 2 ** (f.bits - 1) - 1);
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < G; b++) {
      const c0 = o * nIn + b * width;
      const c1 = o * nIn + Math.min(nIn, (b + 1) * width);
      let lo = Infinity;
      let hi = -Infinity;
      let amax = 0;
      for (let i = c0; i < c1; i++) {
        const v = w[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (Math.abs(v) > amax) amax = Math.abs(v);
      }
      const gi = o * G + b;
      // The same float32 arithmetic as the RTN kernels (intGroup.ts).
      rtnStep[gi] = f.symmetric
        ? Math.fround(amax / (2 ** (f.bits - 1) - 1))
        : Math.fround(Math.fround(hi - lo) / (2 ** f.bits - 1));
      const step = rtnStep[gi];
      rtnZero[gi] = !f.symmetric && step > 0 ? Math.fround(-lo / step) + MAGIC - MAGIC : 0;
      const c = f.symmetric ? 0 : (hi + lo) / 2;
      centre[gi] = c;
      let sumAbs = 0;
      for (let i = c0; i < c1; i++) sumAbs += Math.abs(w[i]! - c);
      lsqStep[gi] = (2 * (sumAbs / (c1 - c0))) / Math.sqrt(qp);
    }
  }
  return { rtnStep, centre, rtnZero, lsqStep };
}

/** U = D·R (or D·diag(d), or D) for the current error D [out, in]. */
async function applyMetric(metric: MetricWeight, D: Mat<Float64Array>): Promise<Mat<Float64Array>> {
  if (metric.kind === 'identity') return mat(Float64Array.from(D.data), D.rows, D.cols);
  if (metric.kind === 'dense') return kernels().matmul(D, metric.R);
  const out = new Float64Array(D.data.length);
  for (let o = 0; o < D.rows; o++) {
    for (let i = 0; i < D.cols; i++) out[o * D.cols + i] = D.data[o * D.cols + i]! * metric.d[i]!;
  }
  return mat(out, D.rows, D.cols);
}

/** J = Σ D ∘ (D·R). */
async function objectiveOf(metric: MetricWeight, D: Mat<Float64Array>): Promise<number> {
  const U = await applyMetric(metric, D);
  let s = 0;
  for (let i = 0; i < D.data.length; i++) s += D.data[i]! * U.data[i]!;
  return s;
}

function errorMatrix(w: Float32Array, wq: Float32Array, out: number, nIn: number): Mat<Float64Array> {
  const d = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) d[i] = w[i]! - wq[i]!;
  return mat(d, out, nIn);
}

/** The square block R[c0:c1, c0:c1] of a dense metric. */
function diagonalBlock(R: Mat<Float64Array>, c0: number, c1: number): Mat<Float64Array> {
  const w = c1 - c0;
  const out = new Float64Array(w * w);
  for (let i = 0; i < w; i++) out.set(R.data.subarray((c0 + i) * R.cols + c0, (c0 + i) * R.cols + c1), i * w);
  return mat(out, w, w);
}

function rowBand(R: Mat<Float64Array>, c0: number, c1: number): Mat<Float64Array> {
  return mat(R.data.slice(c0 * R.cols, c1 * R.cols), c1 - c0, R.cols);
}

function median(a: number[]): number {
  if (a.length === 0) return 1;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The metric and objective a layer's calibration supports, best first. */
export function stepFitMetric(
  calibration: { gram?: Float64Array; rms?: Float32Array } | undefined,
  nIn: number,
): { metric: MetricWeight; objective: StepFitObjective } {
  if (calibration?.gram) return { metric: { kind: 'dense', R: mat(calibration.gram, nIn, nIn) }, objective: 'output' };
  if (calibration?.rms) {
    return {
      metric: { kind: 'diagonal', d: Float64Array.from(calibration.rms, (v) => v * v) },
      objective: 'output-diagonal',
    };
  }
  return { metric: { kind: 'identity' }, objective: 'weight' };
}

/** Fits the step sizes of an INT format to the layer's error J (see the file comment). */
export async function fitStepSizes(
  w: Float32Array,
  out: number,
  nIn: number,
  format: IntFormat,
  options: StepFitOptions,
): Promise<StepFitResult> {
  if (w.length !== out * nIn) throw new Error(`weight has ${w.length} values, expected ${out}×${nIn}`);
  const grid = tileGrid(out, nIn, format.tile);
  if (grid.tileRows !== 1) {
    throw new QuantLensError(
      'unsupported',
      `fitted step sizes need groups along the input dimension (a [1, g] tile); ${format.tile.join('×')} spans several output rows`,
    );
  }
  const { metric, signal } = options;
  const sweeps = options.sweeps ?? 3;
  const width = grid.tileCols;
  const G = grid.tilesAcross;
  const g = gridOf(format);
  const stats = groupStats(w, out, nIn, width, format);
  const clock = new StepClock(signal);

  // Starting points: the format's own RTN grid (bit-exact with fakeQuantize) and the LSQ init.
  const rtnWq = fakeQuantize(w, out, nIn, { ...format, fitted: false });
  const lsqWq = new Float32Array(w.length);
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < G; b++) {
      const gi = o * G + b;
      const c0 = o * nIn + b * width;
      const c1 = o * nIn + Math.min(nIn, (b + 1) * width);
      const s = stats.lsqStep[gi]!;
      if (!(s > 0) || !(stats.rtnStep[gi]! > 0)) lsqWq.set(rtnWq.subarray(c0, c1), c0);
      else quantizeSegment(w, c0, c1, s, centredZero(g, stats.centre[gi]!, s), g, lsqWq, c0);
    }
  }
  const jRtn = await objectiveOf(metric, errorMatrix(w, rtnWq, out, nIn));
  const jLsq = await objectiveOf(metric, errorMatrix(w, lsqWq, out, nIn));
  const start: 'rtn' | 'lsq-init' = jLsq < jRtn ? 'lsq-init' : 'rtn';
  const wq = Float32Array.from(start === 'rtn' ? rtnWq : lsqWq);
  const steps = new Float64Array(out * G);
  const startSteps = start === 'rtn' ? stats.rtnStep : stats.lsqStep;
  const zeros = new Float64Array(out * G);
  const resetToStart = () => {
    for (let i = 0; i < steps.length; i++) {
      const fromStart = start === 'lsq-init' && stats.rtnStep[i]! > 0 && stats.lsqStep[i]! > 0;
      steps[i] = fromStart ? startSteps[i]! : stats.rtnStep[i]!;
      zeros[i] = fromStart ? centredZero(g, stats.centre[i]!, steps[i]!) : stats.rtnZero[i]!;
    }
  };
  resetToStart();
  const D = errorMatrix(w, wq, out, nIn);
  const U = await applyMetric(metric, D);
  throwIfCancelled(signal);

  const changed = new Uint8Array(out * G);
  for (let sweep = 0; sweep < sweeps; sweep++) {
    let moves = 0;
    for (let b = 0; b < G; b++) {
      const c0 = b * width;
      const c1 = Math.min(nIn, c0 + width);
      const wd = c1 - c0;
      const Rbb = metric.kind === 'dense' ? diagonalBlock(metric.R, c0, c1) : null;
      const multipliers = sweep === 0 ? WIDE_GRID : FINE_GRID;
      // Candidate m of row o: step multipliers[m]·(RTN step, or current step in later sweeps);
      // in the first sweep also the LSQ init as one more candidate.
      const count = multipliers.length + (sweep === 0 ? 1 : 0);
      const bestChange = new Float64Array(out);
      const bestStep = Float64Array.from({ length: out }, (_, o) => steps[o * G + b]!);
      const chunk = Math.max(1, Math.min(count, Math.floor(STACK_ELEMENTS / Math.max(1, out * wd))));
      const seg = new Float64Array(wd);
      for (let m0 = 0; m0 < count; m0 += chunk) {
        const m1 = Math.min(count, m0 + chunk);
        const delta = new Float64Array((m1 - m0) * out * wd);
        const candStep = new Float64Array((m1 - m0) * out);
        for (let m = m0; m < m1; m++) {
          for (let o = 0; o < out; o++) {
            const gi = o * G + b;
            const rtn = stats.rtnStep[gi]!;
            const base = (m - m0) * out + o;
            if (!(rtn > 0)) {
              candStep[base] = NaN;
              continue;
            }
            const s = Math.fround(
              m === multipliers.length ? stats.lsqStep[gi]! : multipliers[m]! * (sweep === 0 ? rtn : steps[gi]!),
            );
            candStep[base] = s;
            if (!(s > 0)) continue;
            quantizeSegment(w, o * nIn + c0, o * nIn + c1, s, centredZero(g, stats.centre[gi]!, s), g, seg, 0);
            const off = base * wd;
            for (let j = 0; j < wd; j++) {
              // δ = (w − ŵ_new) − (w − ŵ_cur) = ŵ_cur − ŵ_new
              delta[off + j] = wq[o * nIn + c0 + j]! - seg[j]!;
            }
          }
          if (clock.due()) await clock.tick();
        }
        const stacked = mat(delta, (m1 - m0) * out, wd);
        const P = Rbb ? await kernels().matmul(stacked, Rbb) : null;
        for (let m = m0; m < m1; m++) {
          for (let o = 0; o < out; o++) {
            const base = (m - m0) * out + o;
            const s = candStep[base]!;
            if (!(s > 0)) continue;
            const off = base * wd;
            let lin = 0;
            let quad = 0;
            for (let j = 0; j < wd; j++) {
              const dj = delta[off + j]!;
              lin += dj * U.data[o * nIn + c0 + j]!;
              if (P) quad += dj * P.data[off + j]!;
              else if (metric.kind === 'diagonal') quad += metric.d[c0 + j]! * dj * dj;
              else quad += dj * dj;
            }
            const change = 2 * lin + quad;
            if (change < bestChange[o]!) {
              bestChange[o] = change;
              bestStep[o] = s;
            }
          }
        }
      }
      // Apply the improving moves of this column group, then bring U = D·R up to date.
      const applied = new Float64Array(out * wd);
      let any = false;
      for (let o = 0; o < out; o++) {
        const gi = o * G + b;
        // Float noise in 2·lin + quad must not count as an improvement.
        if (!(bestChange[o]! < -1e-12 * Math.max(jRtn, 1e-300))) continue;
        const s = bestStep[o]!;
        quantizeSegment(w, o * nIn + c0, o * nIn + c1, s, centredZero(g, stats.centre[gi]!, s), g, seg, 0);
        for (let j = 0; j < wd; j++) {
          const i = o * nIn + c0 + j;
          applied[o * wd + j] = wq[i]! - seg[j]!;
          wq[i] = seg[j]!;
          D.data[i] = w[i]! - seg[j]!;
        }
        steps[gi] = s;
        zeros[gi] = centredZero(g, stats.centre[gi]!, s);
        changed[gi] = 1;
        any = true;
        moves++;
      }
      if (any) {
        if (metric.kind === 'dense') {
          const dU = await kernels().matmul(mat(applied, out, wd), rowBand(metric.R, c0, c1));
          for (let i = 0; i < U.data.length; i++) U.data[i] = U.data[i]! + dU.data[i]!;
        } else {
          for (let o = 0; o < out; o++) {
            for (let j = c0; j < c1; j++) {
              const i = o * nIn + j;
              U.data[i] = D.data[i]! * (metric.kind === 'diagonal' ? metric.d[j]! : 1);
            }
          }
        }
      }
      throwIfCancelled(signal);
    }
    if (moves === 0) break;
  }

  // The exact J of the result; the incremental updates carry rounding, so guard the promise.
  let fitted = await objectiveOf(metric, errorMatrix(w, wq, out, nIn));
  const startJ = Math.min(jRtn, jLsq);
  let finalWq = wq;
  if (!(fitted <= startJ)) {
    finalWq = Float32Array.from(start === 'rtn' ? rtnWq : lsqWq);
    fitted = startJ;
    changed.fill(0);
    resetToStart();
  }
  const ratios: number[] = [];
  let groupsChanged = 0;
  for (let i = 0; i < steps.length; i++) {
    if (stats.rtnStep[i]! > 0) ratios.push(steps[i]! / stats.rtnStep[i]!);
    groupsChanged += changed[i]!;
  }
  const zeroPoints = g.symmetric ? null : Float32Array.from(zeros);
  return {
    wq: finalWq,
    steps: Float32Array.from(steps),
    zeroPoints,
    groupsPerRow: G,
    summary: {
      objective: options.objective,
      rtn: jRtn,
      lsqInit: jLsq,
      fitted,
      start,
      sweeps,
      groups: steps.length,
      groupsChanged,
      medianStepRatio: median(ratios),
    },
  };
}
