/**
 * Per-input-channel scales of the diagonal methods, exactly as the official code derives them.
 */

/** float32 machine epsilon: QERA replaces non-positive diagonal scale entries with it. */
const F32_EPS = 2 ** -23;

/**
 * L²QER (LQER's ScaleHookFactoryMeanAbs): clamp the max-over-batches mean |x| at 1e-4, then divide
 * by sqrt(min·max) so that min·max = 1. The normalisation does not change A·B in exact arithmetic;
 * the clamp does matter, because it bounds S⁻¹.
 */
export function l2qerScale(meanAbs: ArrayLike<number>): Float64Array {
  const s = Float64Array.from(meanAbs, (v) => (Number.isFinite(v) ? Math.max(v, 1e-4) : 1e-4));
  let mn = Infinity;
  let mx = 0;
  for (const v of s) {
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  const norm = Math.sqrt(mn * mx);
  for (let i = 0; i < s.length; i++) s[i] = s[i]! / norm;
  return s;
}

/** QERA-approx: the per-channel RMS, no clamp, non-positive entries replaced by float32 eps. */
export function qeraApproxScale(rms: ArrayLike<number>): Float64Array {
  return Float64Array.from(rms, (v) => (v > 0 && Number.isFinite(v) ? v : F32_EPS));
}
