/**
 * The quantized layer a user would deploy at one rank: W_q, and A_k, B_k after their own
 * quantization, with Ŵ = W_q + (A_k·B_k)ᵀ. Used by export and by end-to-end evaluation.
 */
import { fakeQuantize, isQuantized, parseFormat } from '../quantizers';
import { appliedRank } from './methods';
import { computeFactors, factorFormats, prepareLayer, type AnalysisSettings, type LayerInput } from './analyzeLayer';

export interface Reconstruction {
  out: number;
  in: number;
  rank: number;
  /** Dequantized W_q, [out, in]. */
  wq: Float32Array;
  /** Dequantized A_k [in, k] and B_k [k, out] (after their own quantization). */
  a: Float32Array;
  b: Float32Array;
  /** Ŵ = W_q + (A_k·B_k)ᵀ, [out, in]. */
  weight: Float32Array;
}

export async function reconstructLayer(
  input: LayerInput,
  settings: Omit<AnalysisSettings, 'maxRank' | 'spectra'>,
  rank: number,
  signal?: AbortSignal,
): Promise<Reconstruction> {
  const { out, in: nIn } = input;
  const full: AnalysisSettings = { ...settings, maxRank: rank, spectra: false };
  const p = await prepareLayer(input, full, signal);
  const k = appliedRank(settings.method, Math.min(rank, out, nIn));
  const f = await computeFactors(p, k, signal);
  const fmt = factorFormats(settings.factorFormat, settings.factorTiling);
  const quantized = isQuantized(parseFormat(settings.factorFormat));
  const a32 = Float32Array.from(f.A.data);
  const b32 = Float32Array.from(f.B.data);
  const a = quantized && k ? fakeQuantize(a32, nIn, k, fmt.a) : a32;
  const b = quantized && k ? fakeQuantize(b32, k, out, fmt.b) : b32;
  const weight = foldLowRank(p.wq, a, b, out, nIn, k);
  return { out, in: nIn, rank: k, wq: p.wq, a, b, weight };
}

/** Ŵ[o, i] = W_q[o, i] + Σ_j A[i, j]·B[j, o], [out, in]; accumulated in float64. O(out·in·k), k is small. */
export function foldLowRank(
  wq: Float32Array,
  a: Float32Array,
  b: Float32Array,
  out: number,
  nIn: number,
  k: number,
): Float32Array {
  const weight = new Float32Array(out * nIn);
  const acc = new Float64Array(nIn);
  for (let o = 0; o < out; o++) {
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const bjo = b[j * out + o]!;
      if (bjo === 0) continue;
      for (let i = 0; i < nIn; i++) acc[i]! += a[i * k + j]! * bjo;
    }
    for (let i = 0; i < nIn; i++) weight[o * nIn + i] = wq[o * nIn + i]! + acc[i]!;
  }
  return weight;
}
