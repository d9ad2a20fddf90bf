/**
 * ggml's 32-element block types Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: quantize_row_*_ref (no importance
 * matrix) and, with one, the quantize_row_*_impl variants that llama-quantize uses with --imatrix.
 * Block layouts are ggml-common.h's; searches.ts explains the float32 arithmetic.
 */
import { floatToHalf, halfToFloat } from '../../readers/dtypes';
import { f, makeQkx3Quants, makeQxQuants, roundAway, truncInt, type MinOut } from './searches';

const QK = 32;

function putHalf(out: Uint8Array, o: number, v: number): void {
  const h = floatToHalf(v);
  out[o] = h & 0xff;
  out[o + 1] = h >>> 8;
}

function putU32(out: Uint8Array, o: number, v: number): void {
  out[o] = v & 0xff;
  out[o + 1] = (v >>> 8) & 0xff;
  out[o + 2] = (v >>> 16) & 0xff;
  out[o + 3] = (v >>> 24) & 0xff;
}

/** Σx²/n over the whole row, the σ² that the importance weights are built with. */
function rowSigma2(x: Float32Array, xo: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) {
    const v = x[xo + j] as number;
    s = f(s + f(v * v));
  }
  return f(s / n);
}

/** weight[j] = qw[j]·sqrt(σ² + x[j]²), the importance of each element of one block. */
function blockWeights(
  x: Float32Array,
  xo: number,
  qw: Float32Array,
  qo: number,
  sigma2: number,
  out: Float32Array,
  n: number,
): void {
  for (let j = 0; j < n; j++) {
    const v = x[xo + j] as number;
    out[j] = f((qw[qo + j] as number) * f(Math.sqrt(f(sigma2 + f(v * v)))));
  }
}

/** The element of largest magnitude (the first one on ties), signed. */
function signedAbsMax(x: Float32Array, xo: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[xo + j] as number;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, xo: number): [number, number] {
  let min = 3.4028234663852886e38;
  let max = -3.4028234663852886e38;
  for (let j = 0; j < QK; j++) {
    const v = x[xo + j] as number;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

const scratchW = new Float32Array(QK);
const scratchL = new Uint8Array(QK);
const scratchLaux = new Uint8Array(QK);
const minOut: MinOut = { min: 0 };

/** Q4_0 (18 bytes: fp16 d, 16 bytes of nibbles): x ≈ d·(q − 8). */
export function quantizeRowQ4_0(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  const nb = n / QK;
  const sigma2 = qw ? rowSigma2(x, xo, n) : 0;
  for (let i = 0; i < nb; i++) {
    const b = xo + i * QK;
    const o = oo + i * 18;
    if (qw) {
      blockWeights(x, b, qw, i * QK, sigma2, scratchW, QK);
      const d = makeQxQuants(QK, 8, x, b, scratchL, 0, 1, scratchW, 0);
      putHalf(out, o, d);
      for (let j = 0; j < 16; j++) out[o + 2 + j] = (scratchL[j] as number) | ((scratchL[j + 16] as number) << 4);
      continue;
    }
    const d = f(signedAbsMax(x, b) / -8);
    const id = d ? f(1 / d) : 0;
    putHalf(out, o, d);
    for (let j = 0; j < 16; j++) {
      const x0 = f((x[b + j] as number) * id);
      const x1 = f((x[b + 16 + j] as number) * id);
      const q0 = Math.min(15, truncInt(f(x0 + 8.5)));
      const q1 = Math.min(15, truncInt(f(x1 + 8.5)));
      out[o + 2 + j] = (q0 | (q1 << 4)) & 0xff;
    }
  }
}

/** Q4_1 (20 bytes: fp16 d, fp16 m, nibbles): x ≈ d·q + m. */
export function quantizeRowQ4_1(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  const nb = n / QK;
  const sigma2 = qw ? rowSigma2(x, xo, n) : 0;
  for (let i = 0; i < nb; i++) {
    const b = xo + i * QK;
    const o = oo + i * 20;
    if (qw) {
      blockWeights(x, b, qw, i * QK, sigma2, scratchW, QK);
      const d = makeQkx3Quants(QK, 15, x, b, scratchW, scratchL, 0, minOut, scratchLaux, f(-0.9), f(0.05), 36, false);
      putHalf(out, o, d);
      putHalf(out, o + 2, -minOut.min);
      for (let j = 0; j < 16; j++) out[o + 4 + j] = (scratchL[j] as number) | ((scratchL[j + 16] as number) << 4);
      continue;
    }
    const [min, max] = minMax(x, b);
    const d = f(f(max - min) / 15);
    const id = d ? f(1 / d) : 0;
    putHalf(out, o, d);
    putHalf(out, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const x0 = f(f((x[b + j] as number) - min) * id);
      const x1 = f(f((x[b + 16 + j] as number) - min) * id);
      const q0 = Math.min(15, truncInt(f(x0 + 0.5)));
      const q1 = Math.min(15, truncInt(f(x1 + 0.5)));
      out[o + 4 + j] = (q0 | (q1 << 4)) & 0xff;
    }
  }
}

/** Packs 32 five-bit levels as Q5_0/Q5_1 store them: low nibbles in qs, fifth bits in qh. */
function packQ5(levels: ArrayLike<number>, out: Uint8Array, qhAt: number, qsAt: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const a = (levels[j] as number) & 0xff;
    const c = (levels[j + 16] as number) & 0xff;
    out[qsAt + j] = (a & 0x0f) | ((c & 0x0f) << 4);
    qh |= ((a & 0x10) >>> 4) << j;
    qh |= ((c & 0x10) >>> 4) << (j + 16);
  }
  putU32(out, qhAt, qh >>> 0);
}

const levels = new Int32Array(QK);

/** Q5_0 (22 bytes: fp16 d, u32 high bits, nibbles): x ≈ d·(q − 16). */
export function quantizeRowQ5_0(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  const nb = n / QK;
  const sigma2 = qw ? rowSigma2(x, xo, n) : 0;
  for (let i = 0; i < nb; i++) {
    const b = xo + i * QK;
    const o = oo + i * 22;
    if (qw) {
      blockWeights(x, b, qw, i * QK, sigma2, scratchW, QK);
      const d = makeQxQuants(QK, 16, x, b, scratchL, 0, 1, scratchW, 0);
      putHalf(out, o, d);
      packQ5(scratchL, out, o + 2, o + 6);
      continue;
    }
    const d = f(signedAbsMax(x, b) / -16);
    const id = d ? f(1 / d) : 0;
    putHalf(out, o, d);
    for (let j = 0; j < QK; j++) levels[j] = Math.min(31, truncInt(f(f((x[b + j] as number) * id) + 16.5)));
    packQ5(levels, out, o + 2, o + 6);
  }
}

/** Q5_1 (24 bytes: fp16 d, fp16 m, u32 high bits, nibbles): x ≈ d·q + m. */
export function quantizeRowQ5_1(
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  qw: Float32Array | null,
): void {
  const nb = n / QK;
  const sigma2 = qw ? rowSigma2(x, xo, n) : 0;
  for (let i = 0; i < nb; i++) {
    const b = xo + i * QK;
    const o = oo + i * 24;
    if (qw) {
      blockWeights(x, b, qw, i * QK, sigma2, scratchW, QK);
      const d = makeQkx3Quants(QK, 31, x, b, scratchW, scratchL, 0, minOut, scratchLaux, f(-0.9), f(0.05), 36, false);
      putHalf(out, o, d);
      putHalf(out, o + 2, -minOut.min);
      packQ5(scratchL, out, o + 4, o + 8);
      continue;
    }
    const [min, max] = minMax(x, b);
    const d = f(f(max - min) / 31);
    const id = d ? f(1 / d) : 0;
    putHalf(out, o, d);
    putHalf(out, o + 2, min);
    // No clamp here in ggml: (uint8_t)(x0 + 0.5f) of at most 31.5.
    for (let j = 0; j < QK; j++) levels[j] = truncInt(f(f(f((x[b + j] as number) - min) * id) + 0.5));
    packQ5(levels, out, o + 4, o + 8);
  }
}

/** Q8_0 (34 bytes: fp16 d, 32 int8): x ≈ d·q. ggml has no importance-weighted Q8_0. */
export function quantizeRowQ8_0(x: Float32Array, xo: number, n: number, out: Uint8Array, oo: number): void {
  const nb = n / QK;
  for (let i = 0; i < nb; i++) {
    const b = xo + i * QK;
    const o = oo + i * 34;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b + j] as number));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    putHalf(out, o, d);
    for (let j = 0; j < QK; j++) out[o + 2 + j] = roundAway(f((x[b + j] as number) * id)) & 0xff;
  }
}

/** fp16 → float32, for the quantizers that re-read what they stored. */
export function readHalf(b: Uint8Array, o: number): number {
  return halfToFloat((b[o] as number) | ((b[o + 1] as number) << 8));
}
