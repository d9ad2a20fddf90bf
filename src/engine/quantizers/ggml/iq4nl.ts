/**
 * IQ4_NL (18 bytes per 32 values: fp16 d, 4-bit indices into a fixed non-linear codebook). Quant
 * Lens offers it only as the type llama-quantize falls back to when a row does not split into
 * Q2_K/Q3_K super-blocks, so this is what llama-quantize runs for it: ggml's quantize_iq4_nl
 * (quantize_row_iq4_nl_impl with 7 scale tries each way), with or without importance weights.
 */
import { floatToHalf } from '../../readers/dtypes';
import { bestIndexInt8, f, GROUP_MAX_EPS } from './searches';

const QK = 32;

/** kvalues_iq4nl (ggml-common.h). */
export const IQ4NL_CODEBOOK = Int8Array.from([
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
]);

const NTRY = 7;
const weight = new Float32Array(QK);
const L = new Uint8Array(QK);

export function quantizeRowIq4Nl(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  const values = IQ4NL_CODEBOOK;
  const v0 = values[0] as number;
  for (let ib = 0; ib < n / QK; ib++) {
    const b = xo + ib * QK;
    const o = oo + ib * 18;
    let sigma2 = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b + j] as number;
      sigma2 = f(sigma2 + f(v * v));
    }
    sigma2 = f(sigma2 * f(2 / QK));
    for (let j = 0; j < QK; j++) {
      const v = x[b + j] as number;
      weight[j] = qw ? f((qw[ib * QK + j] as number) * f(Math.sqrt(f(sigma2 + f(v * v))))) : f(v * v);
    }
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b + j] as number;
      const ax = Math.abs(v);
      if (ax > amax) {
        amax = ax;
        max = v;
      }
    }
    let d = 0;
    if (amax >= GROUP_MAX_EPS) {
      d = f(-max / v0);
      let id = f(1 / d);
      let sumqx = 0;
      let sumq2 = 0;
      for (let j = 0; j < QK; j++) {
        const v = x[b + j] as number;
        const q = values[bestIndexInt8(16, values, f(id * v))] as number;
        const wq = f((weight[j] as number) * q);
        sumqx = f(sumqx + f(wq * v));
        sumq2 = f(sumq2 + f(wq * q));
      }
      d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
      let best = f(d * sumqx);
      for (let itry = -NTRY; itry <= NTRY; itry++) {
        id = f((itry + v0) / max);
        sumqx = 0;
        sumq2 = 0;
        for (let j = 0; j < QK; j++) {
          const v = x[b + j] as number;
          const q = values[bestIndexInt8(16, values, f(id * v))] as number;
          const wq = f((weight[j] as number) * q);
          sumqx = f(sumqx + f(wq * v));
          sumq2 = f(sumq2 + f(wq * q));
        }
        if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
          d = f(sumqx / sumq2);
          best = f(d * sumqx);
        }
      }
    }
    const h = floatToHalf(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    const id = d ? f(1 / d) : 0;
    for (let j = 0; j < QK; j++) L[j] = bestIndexInt8(16, values, f(id * (x[b + j] as number)));
    for (let j = 0; j < 16; j++) out[o + 2 + j] = (L[j] as number) | ((L[j + 16] as number) << 4);
  }
}
