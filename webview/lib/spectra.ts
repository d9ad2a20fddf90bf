/**
 * What the layer panel draws from a LayerAnalysis: the two spectra (normalised to the same
 * Frobenius norm, as in the LQER paper's figure, or raw), the cumulative energy they capture, and
 * the per-channel activation scale relative to its median. Pure; unit-tested.
 */

/** σ / ‖σ‖₂ — the singular values of a matrix divided by its Frobenius norm. */
export function normalizeSpectrum(sigma: ArrayLike<number>, totalSq?: number): Float64Array {
  // Only the top values of a partial result are at hand: the caller gives the whole energy then.
  let s = totalSq ?? 0;
  if (totalSq === undefined) for (let i = 0; i < sigma.length; i++) s += sigma[i]! * sigma[i]!;
  const norm = Math.sqrt(s) || 1;
  const out = new Float64Array(sigma.length);
  for (let i = 0; i < sigma.length; i++) out[i] = sigma[i]! / norm;
  return out;
}

/** c[k] = Σ_{i<k} σᵢ² / Σ σᵢ² for k = 0…n: the share of the energy the best rank-k approximation captures. */
export function cumulativeEnergy(sigma: ArrayLike<number>, totalSq?: number): Float64Array {
  const n = sigma.length;
  const out = new Float64Array(n + 1);
  let total = totalSq ?? 0;
  if (totalSq === undefined) for (let i = 0; i < n; i++) total += sigma[i]! * sigma[i]!;
  if (total <= 0) return out;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += sigma[i]! * sigma[i]!;
    out[i + 1] = acc / total;
  }
  return out;
}

/** 1 − e[k]/e[0]: the share of the error (in the method's own norm) that rank k removes. */
export function recoveredCurve(errorSq: ArrayLike<number>): Float64Array {
  const out = new Float64Array(errorSq.length);
  const e0 = errorSq[0] ?? 0;
  if (!(e0 > 0)) return out;
  for (let k = 0; k < errorSq.length; k++) out[k] = 1 - errorSq[k]! / e0;
  return out;
}

export function median(values: ArrayLike<number>): number {
  const finite = Array.from(values).filter((v) => Number.isFinite(v));
  if (finite.length === 0) return NaN;
  finite.sort((a, b) => a - b);
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** Each value divided by the median, so scales of different kinds share one axis. */
export function relativeToMedian(values: ArrayLike<number>): Float64Array {
  const m = median(values);
  const out = new Float64Array(values.length);
  const d = m > 0 ? m : 1;
  for (let i = 0; i < values.length; i++) out[i] = values[i]! / d;
  return out;
}

export interface Outlier {
  channel: number;
  value: number;
  /** value / median */
  ratio: number;
}

/** Channels at least `factor` × the median, largest first, at most `limit` of them. */
export function outlierChannels(
  values: ArrayLike<number>,
  factor = 5,
  limit = 8,
): { outliers: Outlier[]; count: number } {
  const m = median(values);
  if (!(m > 0)) return { outliers: [], count: 0 };
  const all: Outlier[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v >= factor * m) all.push({ channel: i, value: v, ratio: v / m });
  }
  all.sort((a, b) => b.value - a.value);
  return { outliers: all.slice(0, limit), count: all.length };
}
