/**
 * The scale searches that ggml's quantizers share (ggml-quants.c: make_qx_quants, make_q3_quants,
 * make_qkx2_quants, make_qkx3_quants, make_qp_quants, best_index_int8), in float32 arithmetic.
 *
 * ggml computes in C `float` (SSE scalar, no FMA, no reassociation), so every operation here is
 * one float64 operation on float32 operands followed by `fround`, which is the correctly rounded
 * float32 result (float32.ts explains why the double rounding is harmless), and sums are taken in
 * the same order as the C loops. That is what makes the output bytes equal ggml's.
 *
 * Arrays are passed with an offset instead of as subarrays: the searches run once per 16 or 32
 * values, and a subarray per call would dominate the cost.
 */

export const f = Math.fround;

/** GROUP_MAX_EPS: blocks whose largest magnitude is below this are all zero. */
export const GROUP_MAX_EPS = f(1e-15);

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);
const MAGIC = 12582912; // 1.5 · 2^23

/**
 * ggml's nearest_int: adds 1.5·2^23 in float32 (which rounds half to even) and reads the low
 * mantissa bits. Exact for |v| ≤ 4194303; outside that range the C function returns whatever the
 * bits say, and so does this.
 */
export function nearestInt(v: number): number {
  const s = f(v + MAGIC);
  const r = s - MAGIC;
  if (r >= -4194304 && r <= 4194303) return r;
  scratchF32[0] = s;
  return ((scratchI32[0] as number) & 0x007fffff) - 0x00400000;
}

/** C's (int) conversion of a float: truncation toward zero. */
export function truncInt(v: number): number {
  return Math.trunc(v);
}

/** C's roundf: half away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

const F01 = f(0.1);

/**
 * make_qx_quants: symmetric levels L ∈ [0, 2·nmax) (stored with +nmax) and the scale, searching
 * 18 candidate scales around nmax/max for the least weighted squared error. `rmseType` 1 weighs by
 * x² unless `qw` is given.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
  rmseType: number,
  qw: Float32Array | null,
  qo: number,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i] as number;
    const ax = Math.abs(v);
    if (ax > amax) {
      amax = ax;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) {
      const l = nearestInt(f(iscale * (x[xo + i] as number)));
      L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
    }
    return f(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) {
    rmseType = -rmseType;
    returnEarly = true;
  }
  const weight = (i: number): number => {
    const v = x[xo + i] as number;
    if (qw) return qw[qo + i] as number;
    if (rmseType === 1) return f(v * v);
    if (rmseType === 2) return 1;
    if (rmseType === 3) return Math.abs(v);
    return f(Math.sqrt(Math.abs(v)));
  };
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i] as number;
    let l = nearestInt(f(iscale * v));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = weight(i);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 ? f(sumlx / suml2) : 0;
  if (returnEarly) return suml2 > 0 ? f(0.5 * f(scale + f(1 / iscale))) : f(1 / iscale);
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(F01 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i] as number;
      let l = nearestInt(f(iscale * v));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = weight(i);
      sumlx = f(sumlx + f(f(w * v) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(f(iscale * (x[xo + i] as number)));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * make_q3_quants with do_rmse: levels in [−nmax, nmax) refined one element at a time (up to five
 * passes) while the x²-weighted fit improves; stored with +nmax.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i] as number;
    const ax = Math.abs(v);
    if (ax > amax) {
      amax = ax;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i] as number;
    let l = nearestInt(f(iscale * v));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l;
    const w = f(v * v);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i] as number;
      const w = f(v * v);
      const li = L[lo + i] as number;
      let slx = f(sumlx - f(f(w * v) * li));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * li) * li));
        let nl = nearestInt(f(f(v * sl2) / slx));
        nl = Math.max(-nmax, Math.min(nmax - 1, nl));
        if (nl !== li) {
          slx = f(slx + f(f(w * v) * nl));
          sl2 = f(sl2 + f(f(w * nl) * nl));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = (L[lo + i] as number) + nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/** Result slot for the searches that also return a minimum. */
export interface MinOut {
  min: number;
}

/**
 * make_qkx2_quants: asymmetric levels in [0, nmax] with a scale and a (non-positive) minimum,
 * fitted by weighted least squares over nstep+1 candidate scales; returns the scale and sets
 * out.min to −min (what the block stores).
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  out: MinOut,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xo] as number;
  let max = min;
  let sumW = weights[0] as number;
  let sumX = f(sumW * min);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i] as number;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i] as number;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    out.min = -min;
    return 0;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i] as number;
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(v - min)))));
    L[lo + i] = l;
    let diff = f(f(f(scale * l) + min) - v);
    diff = useMad ? Math.abs(diff) : f(diff * diff);
    bestError = f(bestError + f((weights[i] as number) * diff));
  }
  if (nstep < 1) {
    out.min = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // min is the best fit so far: later candidates are taken around it, as in ggml.
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i] as number;
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(v - min)))));
      Laux[i] = l;
      const w = weights[i] as number;
      const wl = f(w * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * v));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * (Laux[i] as number)) + thisMin) - (x[xo + i] as number));
        diff = useMad ? Math.abs(diff) : f(diff * diff);
        curError = f(curError + f((weights[i] as number) * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i] as number;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out.min = -min;
  return scale;
}

/**
 * make_qkx3_quants: the importance-weighted variant of makeQkx2Quants (weights given, or x²), as
 * the quantizers call it when an importance matrix is supplied.
 */
export function makeQkx3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  out: MinOut,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xo] as number;
  let max = min;
  let sumW = weights[0] as number;
  let sumX = f(sumW * min);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i] as number;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i] as number;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max <= min) {
    L.fill(0, lo, lo + n);
    out.min = -min;
    return 0;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestMad = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i] as number;
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(v - min)))));
    L[lo + i] = l;
    let diff = f(f(f(scale * l) + min) - v);
    diff = useMad ? Math.abs(diff) : f(diff * diff);
    bestMad = f(bestMad + f((weights[i] as number) * diff));
  }
  if (nstep < 1) {
    out.min = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // min is the best fit so far: later candidates are taken around it, as in ggml.
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i] as number;
      // The newer ggml guards against a best-fit min near max making this inf or NaN.
      const t = f(iscale * f(v - min));
      const l = t > 0 ? nearestInt(t < nmax ? t : nmax) : 0;
      Laux[i] = l;
      const w = weights[i] as number;
      const wl = f(w * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * v));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let mad = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * (Laux[i] as number)) + thisMin) - (x[xo + i] as number));
        diff = useMad ? Math.abs(diff) : f(diff * diff);
        mad = f(mad + f((weights[i] as number) * diff));
      }
      if (mad < bestMad) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i] as number;
        bestMad = mad;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out.min = -min;
  return scale;
}

/**
 * make_qp_quants: non-negative levels in [0, nmax] for a super-block's sub-block scales (or
 * minima), weighted by the sub-blocks' summed importance.
 */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, qw: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i] as number);
  if (max < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = f(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(f(iscale * (x[i] as number)));
  const scale = f(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = f((x[i] as number) - f(scale * (L[i] as number)));
    bestMse = f(bestMse + f(f((qw[i] as number) * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = f(f(f(F01 * is) + nmax) / max);
    const scaleIs = f(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(f(iscaleIs * (x[i] as number))));
      const diff = f((x[i] as number) - f(scaleIs * l));
      mse = f(mse + f(f((qw[i] as number) * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestInt(f(iscale * (x[i] as number))));
    L[i] = l;
    const w = qw[i] as number;
    sumlx = f(sumlx + f(f(w * (x[i] as number)) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i] as number;
      const v = x[i] as number;
      const li = L[i] as number;
      let slx = f(sumlx - f(f(w * v) * li));
      let sl2 = f(suml2 - f(f(w * li) * li));
      if (slx > 0 && sl2 > 0) {
        const nl = Math.min(nmax, nearestInt(f(f(v * sl2) / slx)));
        if (nl !== li) {
          slx = f(slx + f(f(w * v) * nl));
          sl2 = f(sl2 + f(f(w * nl) * nl));
          if (f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/**
 * best_index_int8: the index of the level of the sorted codebook `values` (n a power of two)
 * nearest to x; a value at a midpoint takes the upper level. Comparing 2x with the sum of two
 * neighbours keeps both sides exact.
 */
export function bestIndexInt8(n: number, values: Int8Array, x: number): number {
  const x2 = f(x + x);
  let idx = 0;
  for (let step = n >> 1; step > 0; step >>= 1) {
    const j = idx + step;
    if (x2 >= (values[j - 1] as number) + (values[j] as number)) idx = j;
  }
  return idx;
}
