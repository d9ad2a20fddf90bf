/**
 * Elementary reflectors H = I − τ·v·vᵀ with v[0] = 1, chosen so that H·x = β·e₁.
 * The sign of β is opposite to x[0], which keeps 1 − x[0]/β away from cancellation.
 */

/** Smallest norm we divide by; below it the column is treated as already reduced. */
const TINY = 1e-300;

/**
 * Turns x[off .. off+len) (stride `stride`) into the reflector's v in place (v[0] = 1 is stored
 * explicitly) and returns τ; the reduced value β is written to `out[0]`. τ = 0 means H = I.
 */
export function makeReflector(x: Float64Array, off: number, len: number, stride: number, out: Float64Array): number {
  const alpha = x[off]!;
  let scale = 0;
  for (let i = 1, p = off + stride; i < len; i++, p += stride) scale = Math.max(scale, Math.abs(x[p]!));
  if (scale < TINY) {
    out[0] = alpha;
    x[off] = 1;
    return 0;
  }
  // Scaled sum of squares so that entries near the overflow or underflow limit stay exact enough.
  let ss = 0;
  for (let i = 1, p = off + stride; i < len; i++, p += stride) {
    const t = x[p]! / scale;
    ss += t * t;
  }
  const a = alpha / scale;
  const norm = scale * Math.sqrt(a * a + ss);
  const beta = alpha >= 0 ? -norm : norm;
  const tau = (beta - alpha) / beta;
  const inv = 1 / (alpha - beta);
  for (let i = 1, p = off + stride; i < len; i++, p += stride) x[p] = x[p]! * inv;
  x[off] = 1;
  out[0] = beta;
  return tau;
}
