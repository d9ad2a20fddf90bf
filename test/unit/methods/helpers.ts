import { mulberry32 } from '../../../src/engine/random';
/** Small deterministic inputs shared by the methods tests. */

/** mulberry32, returning values in [−0.5, 0.5). */
export function rng(seed: number): () => number {
  const r = mulberry32(seed);
  return () => r() - 0.5;
}

/** A standard normal sample from a uniform generator (Box–Muller). */
export function gaussian(r: () => number): () => number {
  return () => {
    const u = r() + 0.5 || 1e-12;
    const v = r() + 0.5;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** Activation rows X [tokens, nIn] with a few outlier channels (every `outlierEvery`-th, ×scale). */
export function activations(tokens: number, nIn: number, seed: number, outlierEvery = 9, scale = 12): Float32Array {
  const g = gaussian(rng(seed));
  const chan = Float64Array.from({ length: nIn }, (_, i) => (i % outlierEvery === 3 ? scale : 0.5 + (i % 5) * 0.2));
  return Float32Array.from({ length: tokens * nIn }, (_, t) => g() * chan[t % nIn]!);
}

export function weights(out: number, nIn: number, seed: number, std = 0.05): Float32Array {
  const g = gaussian(rng(seed));
  return Float32Array.from({ length: out * nIn }, () => g() * std);
}

/** R = XᵀX / n and the statistics a calibration file would hold for X [tokens, nIn]. */
export function statistics(
  x: Float32Array,
  tokens: number,
  nIn: number,
): { gram: Float64Array; meanAbs: Float32Array; rms: Float32Array } {
  const gram = new Float64Array(nIn * nIn);
  const meanAbs = new Float32Array(nIn);
  const rms = new Float32Array(nIn);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < nIn; i++) {
      const xi = x[t * nIn + i]!;
      meanAbs[i]! += Math.abs(xi) / tokens;
      rms[i]! += (xi * xi) / tokens;
      for (let j = 0; j < nIn; j++) gram[i * nIn + j]! += (xi * x[t * nIn + j]!) / tokens;
    }
  }
  for (let i = 0; i < nIn; i++) rms[i] = Math.sqrt(rms[i]!);
  return { gram, meanAbs, rms };
}

/** tr(D R Dᵀ) for D = W − Ŵ [out, nIn] and a dense R, computed directly. */
export function outputErrorSq(w: Float32Array, wq: Float32Array, out: number, nIn: number, R: Float64Array): number {
  let s = 0;
  const d = new Float64Array(nIn);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < nIn; i++) d[i] = w[o * nIn + i]! - wq[o * nIn + i]!;
    for (let i = 0; i < nIn; i++) {
      let r = 0;
      for (let j = 0; j < nIn; j++) r += R[i * nIn + j]! * d[j]!;
      s += d[i]! * r;
    }
  }
  return s;
}
