/**
 * Quantized layers at several ranks from one decomposition: W_q and the method's factors are
 * computed once at the largest rank R, and each rank k ≤ R takes the first k columns of A and
 * rows of B, quantized on their own, exactly as `reconstructLayer` does at rank k (the top-k
 * singular triplets of a rank-R randomized SVD are the top-k ones).
 */
import { throwIfCancelled } from '../errors';
import type { LayerStatistics } from '../calibration/accumulator';
import type { StatsFile } from '../calibration/statsFile';
import {
  computeFactors,
  factorFormats,
  prepareLayer,
  type AnalysisSettings,
  type LayerCalibration,
  type LayerInput,
} from '../methods/analyzeLayer';
import { METHODS } from '../methods/methods';
import { foldLowRank as foldWeights } from '../methods/reconstruct';
import { fakeQuantize, isQuantized, parseFormat } from '../quantizers';

export type QuantSettings = Omit<AnalysisSettings, 'maxRank' | 'spectra'>;

export interface LayerAtRank {
  rank: number;
  out: number;
  in: number;
  /** Dequantized W_q [out, in]. */
  wq: Float32Array;
  /** Quantized A_k [in, k] and B_k [k, out]. */
  a: Float32Array;
  b: Float32Array;
}

function sliceColumns(a: Float64Array, rows: number, cols: number, k: number): Float32Array {
  const out = new Float32Array(rows * k);
  for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) out[i * k + j] = a[i * cols + j]!;
  return out;
}

/** The layer at each requested rank (a rank above min(out, in) means full rank). */
export async function quantizeLayerAtRanks(
  input: LayerInput,
  settings: QuantSettings,
  ranks: number[],
  signal?: AbortSignal,
): Promise<LayerAtRank[]> {
  const { out, in: nIn } = input;
  const full = Math.min(out, nIn);
  // Float weights have no error to reconstruct (and a zero matrix has no top singular vectors).
  const noError = !METHODS[settings.method].corrects || !isQuantized(parseFormat(settings.weightFormat));
  const wanted = ranks.map((r) => (noError ? 0 : Math.min(r, full)));
  const R = Math.max(0, ...wanted);
  const p = await prepareLayer(input, { ...settings, maxRank: R, spectra: false }, signal);
  const f = await computeFactors(p, R, signal);
  throwIfCancelled(signal);
  const fmt = factorFormats(settings.factorFormat, settings.factorTiling);
  const quantized = isQuantized(parseFormat(settings.factorFormat));
  return wanted.map((k) => {
    const a32 = sliceColumns(f.A.data, nIn, R, k);
    const b32 = Float32Array.from(f.B.data.subarray(0, k * out));
    return {
      rank: k,
      out,
      in: nIn,
      wq: p.wq,
      a: quantized && k ? fakeQuantize(a32, nIn, k, fmt.a) : a32,
      b: quantized && k ? fakeQuantize(b32, k, out, fmt.b) : b32,
    };
  });
}

/** Ŵ = W_q + (A·B)ᵀ, [out, in]. */
export function foldLowRank(l: LayerAtRank): Float32Array {
  return foldWeights(l.wq, l.a, l.b, l.out, l.in, l.rank);
}

/**
 * The calibration a method needs for one layer, from a stats file or from statistics in memory;
 * with a `…:imatrix` llama.cpp weight format also act_rms, its importance matrix.
 */
export async function layerCalibration(
  source: StatsFile | Map<string, LayerStatistics> | null,
  name: string,
  inFeatures: number,
  method: QuantSettings['method'],
  weightFormat?: string,
): Promise<LayerCalibration | undefined> {
  const methodNeed = METHODS[method].needs;
  const f = weightFormat ? parseFormat(weightFormat) : null;
  const importance = f?.kind === 'ggml' && f.imatrix;
  const need = methodNeed ?? (importance ? 'act_rms' : null);
  if (!need || !source) return undefined;
  if (source instanceof Map) {
    const s = source.get(name);
    if (!s) return undefined;
    return { meanAbs: s.meanAbs, rms: s.rms, ...(s.gram ? { gram: s.gram } : {}), tokens: s.tokens };
  }
  if (!source.has(name, need)) return undefined;
  const c: LayerCalibration = { tokens: source.tokensFor(name) ?? 0 };
  if (need === 'act_mean_abs') c.meanAbs = await source.read(name, 'act_mean_abs', inFeatures);
  if (need === 'act_rms') c.rms = await source.read(name, 'act_rms', inFeatures);
  if (need === 'act_gram') c.gram = await source.readGram(name, inFeatures);
  if (importance && !c.rms && !c.gram && source.has(name, 'act_rms'))
    c.rms = await source.read(name, 'act_rms', inFeatures);
  return c;
}
