/**
 * ggml's K-quants Q2_K … Q6_K: super-blocks of 256 with 6- or 4-bit sub-block scales under an
 * fp16 super-scale. Without importance weights these are quantize_row_q*_K_ref (what
 * llama-quantize runs without --imatrix); with them, quantize_row_q*_K_impl. Block layouts are
 * ggml-common.h's; searches.ts explains the float32 arithmetic.
 */
import { floatToHalf } from '../../readers/dtypes';
import { readHalf } from './legacy';
import {
  f,
  GROUP_MAX_EPS,
  makeQ3Quants,
  makeQkx2Quants,
  makeQkx3Quants,
  makeQpQuants,
  makeQxQuants,
  nearestInt,
  type MinOut,
} from './searches';

export const QK_K = 256;

function putHalf(out: Uint8Array, o: number, v: number): void {
  const h = floatToHalf(v);
  out[o] = h & 0xff;
  out[o + 1] = h >>> 8;
}

const L = new Uint8Array(QK_K);
const L8 = new Int8Array(QK_K);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(16);
const sw = new Float32Array(16);
const Ls = new Uint8Array(16);
const Lm = new Uint8Array(16);
const minOut: MinOut = { min: 0 };

/** Σx² over one super-block. */
function sumSquares(x: Float32Array, xo: number): number {
  let s = 0;
  for (let j = 0; j < QK_K; j++) {
    const v = x[xo + j] as number;
    s = f(s + f(v * v));
  }
  return s;
}

function importanceWeights(x: Float32Array, xo: number, qw: Float32Array, qo: number, sigma2: number, n: number): void {
  for (let l = 0; l < n; l++) {
    const v = x[xo + l] as number;
    weights[l] = f((qw[qo + l] as number) * f(Math.sqrt(f(sigma2 + f(v * v)))));
  }
}

/** 2-bit levels of four 32-element groups, interleaved as Q2_K and Q3_K store them. */
function pack2Bit(levels: ArrayLike<number>, out: Uint8Array, qsAt: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[qsAt + j / 4 + l] =
        ((levels[j + l] as number) |
          ((levels[j + l + 32] as number) << 2) |
          ((levels[j + l + 64] as number) << 4) |
          ((levels[j + l + 96] as number) << 6)) &
        0xff;
    }
  }
}

/** Q2_K (84 bytes: scales[16] as 4-bit scale | 4-bit min, qs[64], fp16 d, fp16 dmin). */
export function quantizeRowQ2_K(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  for (let i = 0; i < n / QK_K; i++) {
    const b = xo + i * QK_K;
    const o = oo + i * 84;
    if (qw) {
      const sigma2 = f(sumSquares(x, b) / QK_K);
      for (let j = 0; j < 16; j++) {
        importanceWeights(x, b + 16 * j, qw, i * QK_K + 16 * j, sigma2, 16);
        let s = 0;
        for (let l = 0; l < 16; l++) s = f(s + (weights[l] as number));
        sw[j] = s;
        scales[j] = makeQkx3Quants(16, 3, x, b + 16 * j, weights, L, 16 * j, minOut, Laux, f(-0.9), f(0.05), 36, false);
        mins[j] = minOut.min;
      }
      let dm = makeQpQuants(16, 15, scales, Ls, sw);
      let mm = makeQpQuants(16, 15, mins, Lm, sw);
      putHalf(out, o + 80, dm);
      putHalf(out, o + 82, mm);
      dm = readHalf(out, o + 80);
      mm = readHalf(out, o + 82);
      for (let j = 0; j < 16; j++) out[o + j] = ((Ls[j] as number) | ((Lm[j] as number) << 4)) & 0xff;
      requantizeQ2(x, b, out, o, dm, mm);
    } else {
      let maxScale = 0;
      let maxMin = 0;
      for (let j = 0; j < 16; j++) {
        for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[b + 16 * j + l] as number);
        scales[j] = makeQkx2Quants(16, 3, x, b + 16 * j, weights, L, 16 * j, minOut, Laux, f(-0.5), f(0.1), 15, true);
        mins[j] = minOut.min;
        if ((scales[j] as number) > maxScale) maxScale = scales[j] as number;
        if ((mins[j] as number) > maxMin) maxMin = mins[j] as number;
      }
      if (maxScale > 0) {
        const iscale = f(15 / maxScale);
        for (let j = 0; j < 16; j++) out[o + j] = nearestInt(f(iscale * (scales[j] as number))) & 0xff;
        putHalf(out, o + 80, f(maxScale / 15));
      } else {
        out.fill(0, o, o + 16);
        putHalf(out, o + 80, 0);
      }
      if (maxMin > 0) {
        const iscale = f(15 / maxMin);
        for (let j = 0; j < 16; j++) {
          out[o + j] = ((out[o + j] as number) | (nearestInt(f(iscale * (mins[j] as number))) << 4)) & 0xff;
        }
        putHalf(out, o + 82, f(maxMin / 15));
      } else {
        putHalf(out, o + 82, 0);
      }
      requantizeQ2(x, b, out, o, readHalf(out, o + 80), readHalf(out, o + 82));
    }
    pack2Bit(L, out, o + 16);
  }
}

/** Final Q2_K levels against the stored scales; sub-blocks whose scale is 0 keep the search's. */
function requantizeQ2(x: Float32Array, b: number, out: Uint8Array, o: number, dAll: number, mAll: number): void {
  for (let j = 0; j < 16; j++) {
    const sc = out[o + j] as number;
    const d = f(dAll * (sc & 0xf));
    if (!d) continue;
    const dm = f(mAll * (sc >> 4));
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(f(f((x[b + 16 * j + ii] as number) + dm) / d));
      L[16 * j + ii] = Math.max(0, Math.min(3, l));
    }
  }
}

/** Writes the 16 six-bit Q3_K scales (already offset by 32) into their 12 bytes. */
function packQ3Scales(levels: ArrayLike<number>, out: Uint8Array, s: number): void {
  out.fill(0, s, s + 12);
  for (let j = 0; j < 16; j++) {
    let l = levels[j] as number;
    if (j < 8) out[s + j] = l & 0xf;
    else out[s + j - 8] = ((out[s + j - 8] as number) | ((l & 0xf) << 4)) & 0xff;
    l >>= 4;
    out[s + 8 + (j % 4)] = ((out[s + 8 + (j % 4)] as number) | (l << (2 * Math.floor(j / 4)))) & 0xff;
  }
}

/** The signed 6-bit scale j of a Q3_K block, as stored. */
function q3Scale(out: Uint8Array, s: number, j: number): number {
  let sc = j < 8 ? (out[s + j] as number) & 0xf : (out[s + j - 8] as number) >> 4;
  sc = (sc | ((((out[s + 8 + (j % 4)] as number) >> (2 * Math.floor(j / 4))) & 3) << 4)) - 32;
  return (sc << 24) >> 24;
}

const q3Levels = new Int32Array(16);

/** Q3_K (110 bytes: hmask[32], qs[64], scales[12], fp16 d): x ≈ d·sc·(q − 4). */
export function quantizeRowQ3_K(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  for (let i = 0; i < n / QK_K; i++) {
    const b = xo + i * QK_K;
    const o = oo + i * 110;
    const s = o + 96;
    if (qw) {
      const sigma2 = f(f(2 * sumSquares(x, b)) / QK_K);
      for (let j = 0; j < 16; j++) {
        importanceWeights(x, b + 16 * j, qw, i * QK_K + 16 * j, sigma2, 16);
        let sumw = 0;
        for (let l = 0; l < 16; l++) sumw = f(sumw + (weights[l] as number));
        sw[j] = sumw;
        scales[j] = makeQxQuants(16, 4, x, b + 16 * j, L, 16 * j, 1, weights, 0);
      }
      for (let j = 0; j < QK_K; j++) L8[j] = L[j] as number;
      const dBlock = makeQxQuants(16, 32, scales, 0, Ls, 0, 1, sw, 0);
      packQ3Scales(Ls, out, s);
      putHalf(out, o + 108, dBlock);
    } else {
      let maxScale = 0;
      let amax = 0;
      for (let j = 0; j < 16; j++) {
        scales[j] = makeQ3Quants(16, 4, x, b + 16 * j, L8, 16 * j);
        const sc = Math.abs(scales[j] as number);
        if (sc > amax) {
          amax = sc;
          maxScale = scales[j] as number;
        }
      }
      if (maxScale) {
        const iscale = f(-32 / maxScale);
        for (let j = 0; j < 16; j++) {
          const l = (nearestInt(f(iscale * (scales[j] as number))) << 24) >> 24;
          q3Levels[j] = Math.max(-32, Math.min(31, l)) + 32;
        }
        packQ3Scales(q3Levels, out, s);
        putHalf(out, o + 108, f(1 / iscale));
      } else {
        out.fill(0, s, s + 12);
        putHalf(out, o + 108, 0);
      }
    }
    const dAll = readHalf(out, o + 108);
    for (let j = 0; j < 16; j++) {
      const d = f(dAll * q3Scale(out, s, j));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f((x[b + 16 * j + ii] as number) / d));
        L8[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    out.fill(0, o, o + 32);
    let m = 0;
    let hm = 1;
    for (let j = 0; j < QK_K; j++) {
      if ((L8[j] as number) > 3) {
        out[o + m] = ((out[o + m] as number) | hm) & 0xff;
        L8[j] = (L8[j] as number) - 4;
      }
      if (++m === 32) {
        m = 0;
        hm <<= 1;
      }
    }
    pack2Bit(L8, out, o + 32);
  }
}

/** Writes eight 6-bit scales and eight 6-bit mins into the 12 bytes of Q4_K/Q5_K. */
function packScalesMinsK4(ls: ArrayLike<number>, lm: ArrayLike<number>, out: Uint8Array, s: number): void {
  for (let j = 0; j < 8; j++) {
    const a = (ls[j] as number) & 0xff;
    const c = (lm[j] as number) & 0xff;
    if (j < 4) {
      out[s + j] = a;
      out[s + j + 4] = c;
    } else {
      out[s + j + 4] = ((a & 0xf) | ((c & 0xf) << 4)) & 0xff;
      out[s + j - 4] = ((out[s + j - 4] as number) | ((a >> 4) << 6)) & 0xff;
      out[s + j] = ((out[s + j] as number) | ((c >> 4) << 6)) & 0xff;
    }
  }
}

/** get_scale_min_k4: scale and min j of a Q4_K/Q5_K block. */
function scaleMinK4(out: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [(out[s + j] as number) & 63, (out[s + j + 4] as number) & 63];
  return [
    ((out[s + j + 4] as number) & 0xf) | (((out[s + j - 4] as number) >> 6) << 4),
    ((out[s + j + 4] as number) >> 4) | (((out[s + j] as number) >> 6) << 4),
  ];
}

const k4Ls = new Uint8Array(8);
const k4Lm = new Uint8Array(8);

/**
 * The common part of Q4_K and Q5_K: per 32-element sub-block a scale and a min (qkx2 search, or
 * qkx3 + qp with importance), stored in 6 bits under fp16 d and dmin, then the final levels in L.
 */
function quantizeK4Scales(
  x: Float32Array,
  b: number,
  out: Uint8Array,
  o: number,
  nmax: number,
  qw: Float32Array | null,
  qo: number,
): void {
  const s = o + 4;
  if (qw) {
    const sigma2 = f(f(2 * sumSquares(x, b)) / QK_K);
    for (let j = 0; j < 8; j++) {
      importanceWeights(x, b + 32 * j, qw, qo + 32 * j, sigma2, 32);
      let sumw = 0;
      for (let l = 0; l < 32; l++) sumw = f(sumw + (weights[l] as number));
      sw[j] = sumw;
      scales[j] = makeQkx3Quants(
        32,
        nmax,
        x,
        b + 32 * j,
        weights,
        L,
        32 * j,
        minOut,
        Laux,
        f(-0.9),
        f(0.05),
        36,
        false,
      );
      mins[j] = minOut.min;
    }
    const dBlock = makeQpQuants(8, 63, scales, k4Ls, sw);
    const mBlock = makeQpQuants(8, 63, mins, k4Lm, sw);
    for (let j = 0; j < 8; j++) {
      k4Ls[j] = Math.min(63, k4Ls[j] as number);
      k4Lm[j] = Math.min(63, k4Lm[j] as number);
    }
    packScalesMinsK4(k4Ls, k4Lm, out, s);
    putHalf(out, o, dBlock);
    putHalf(out, o + 2, mBlock);
  } else {
    const rmin = nmax === 15 ? f(-1) : f(-0.5);
    const nstep = nmax === 15 ? 20 : 15;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) {
        const v = x[b + 32 * j + l] as number;
        sumX2 = f(sumX2 + f(v * v));
      }
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[b + 32 * j + l] as number));
      scales[j] = makeQkx2Quants(32, nmax, x, b + 32 * j, weights, L, 32 * j, minOut, Laux, rmin, f(0.1), nstep, false);
      mins[j] = minOut.min;
      if ((scales[j] as number) > maxScale) maxScale = scales[j] as number;
      if ((mins[j] as number) > maxMin) maxMin = mins[j] as number;
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      k4Ls[j] = Math.min(63, nearestInt(f(invScale * (scales[j] as number))) & 0xff);
      k4Lm[j] = Math.min(63, nearestInt(f(invMin * (mins[j] as number))) & 0xff);
    }
    packScalesMinsK4(k4Ls, k4Lm, out, s);
    putHalf(out, o, f(maxScale / 63));
    putHalf(out, o + 2, f(maxMin / 63));
  }
  const dAll = readHalf(out, o);
  const mAll = readHalf(out, o + 2);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(out, s, j);
    const d = f(dAll * sc);
    if (!d) continue;
    const dm = f(mAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(f(f((x[b + 32 * j + ii] as number) + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

/** Q4_K (144 bytes: fp16 d, fp16 dmin, scales[12], qs[128]): x ≈ d·sc·q − dmin·m. */
export function quantizeRowQ4_K(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  for (let i = 0; i < n / QK_K; i++) {
    const b = xo + i * QK_K;
    const o = oo + i * 144;
    quantizeK4Scales(x, b, out, o, 15, qw, i * QK_K);
    let q = o + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[q + l] = (L[j + l] as number) | ((L[j + l + 32] as number) << 4);
      q += 32;
    }
  }
}

/** Q5_K (176 bytes: fp16 d, fp16 dmin, scales[12], qh[32], qs[128]). */
export function quantizeRowQ5_K(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  for (let i = 0; i < n / QK_K; i++) {
    const b = xo + i * QK_K;
    const o = oo + i * 176;
    quantizeK4Scales(x, b, out, o, 31, qw, i * QK_K);
    const qh = o + 16;
    let ql = o + 48;
    out.fill(0, qh, qh + 32);
    let m1 = 1;
    let m2 = 2;
    for (let nn = 0; nn < QK_K; nn += 64) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[nn + j] as number;
        if (l1 > 15) {
          l1 -= 16;
          out[qh + j] = (out[qh + j] as number) | m1;
        }
        let l2 = L[nn + j + 32] as number;
        if (l2 > 15) {
          l2 -= 16;
          out[qh + j] = (out[qh + j] as number) | m2;
        }
        out[ql + j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}

/** Q6_K (210 bytes: ql[128], qh[64], int8 scales[16], fp16 d): x ≈ d·sc·(q − 32). */
export function quantizeRowQ6_K(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  for (let i = 0; i < n / QK_K; i++) {
    const b = xo + i * QK_K;
    const o = oo + i * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, b + 16 * ib, L, 16 * ib, 1, qw, i * QK_K + 16 * ib);
      scales[ib] = scale;
      const abs = Math.abs(scale);
      if (abs > maxAbsScale) {
        maxAbsScale = abs;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, o, o + 210);
      continue;
    }
    const iscale = f(-128 / maxScale);
    putHalf(out, o + 208, f(1 / iscale));
    for (let ib = 0; ib < 16; ib++) {
      out[o + 192 + ib] = Math.min(127, nearestInt(f(iscale * (scales[ib] as number)))) & 0xff;
    }
    const dAll = readHalf(out, o + 208);
    for (let j = 0; j < 16; j++) {
      const sc = ((out[o + 192 + j] as number) << 24) >> 24;
      const d = f(dAll * sc);
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f((x[b + 16 * j + ii] as number) / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    let ql = o;
    let qh = o + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const a = L[j + l] as number;
        const c = L[j + l + 32] as number;
        const e = L[j + l + 64] as number;
        const g = L[j + l + 96] as number;
        out[ql + l] = (a & 0xf) | ((e & 0xf) << 4);
        out[ql + l + 32] = (c & 0xf) | ((g & 0xf) << 4);
        out[qh + l] = ((a >> 4) | ((c >> 4) << 2) | ((e >> 4) << 4) | ((g >> 4) << 6)) & 0xff;
      }
      ql += 64;
      qh += 32;
    }
  }
}
