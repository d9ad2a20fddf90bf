/**
 * ggml tensor types: block sizes for every type (so any GGUF can be listed and its layout
 * checked) and float32 dequantization for the common ones. Block layouts and formulas follow
 * ggml's ggml-common.h and dequantize_row_* in ggml-quants.c, in float32 arithmetic with ggml's
 * order of operations (each product rounded with fround before the next operation), so the values
 * are bit for bit what ggml and gguf-py decode: W_q of the llama.cpp formats is defined by them.
 */
import { halfToFloat } from '../dtypes';

export interface GgmlType {
  name: string;
  /** Elements per block. */
  blockElements: number;
  /** Bytes per block. */
  blockBytes: number;
  /** Absent for types we list but do not dequantize. */
  dequantize?: (bytes: Uint8Array, out: Float32Array, at: number, blocks: number) => void;
}

const QK = 32;
const QK_K = 256;
const fr = Math.fround;

function f16(b: Uint8Array, i: number): number {
  return halfToFloat(b[i]! | (b[i + 1]! << 8));
}

function plain(
  read: (dv: DataView, i: number) => number,
  width: number,
): (bytes: Uint8Array, out: Float32Array, at: number, blocks: number) => void {
  return (bytes, out, at, blocks) => {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < blocks; i++) out[at + i] = read(dv, i * width);
  };
}

function dequantQ4_0(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 18;
    const d = f16(b, o);
    const y = at + k * QK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j]!;
      out[y + j] = ((q & 0x0f) - 8) * d;
      out[y + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

function dequantQ4_1(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 20;
    const d = f16(b, o);
    const m = f16(b, o + 2);
    const y = at + k * QK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 4 + j]!;
      out[y + j] = fr((q & 0x0f) * d) + m;
      out[y + j + 16] = fr((q >> 4) * d) + m;
    }
  }
}

function u32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

function dequantQ5_0(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 22;
    const d = f16(b, o);
    const qh = u32(b, o + 2);
    const y = at + k * QK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 6 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[y + j] = (((q & 0x0f) | h0) - 16) * d;
      out[y + j + 16] = (((q >> 4) | h1) - 16) * d;
    }
  }
}

function dequantQ5_1(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 24;
    const d = f16(b, o);
    const m = f16(b, o + 2);
    const qh = u32(b, o + 4);
    const y = at + k * QK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 8 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[y + j] = fr(((q & 0x0f) | h0) * d) + m;
      out[y + j + 16] = fr(((q >> 4) | h1) * d) + m;
    }
  }
}

function dequantQ8_0(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 34;
    const d = f16(b, o);
    const y = at + k * QK;
    for (let j = 0; j < QK; j++) out[y + j] = ((b[o + 2 + j]! << 24) >> 24) * d;
  }
}

function dequantQ8_1(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 36;
    const d = f16(b, o);
    const y = at + k * QK;
    for (let j = 0; j < QK; j++) out[y + j] = ((b[o + 4 + j]! << 24) >> 24) * d;
  }
}

/** The 6-bit scale and min of sub-block j from the 12 packed bytes of Q4_K / Q5_K. */
function scaleMinK4(j: number, s: Uint8Array, o: number): [number, number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 0x0f) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

function dequantQ2_K(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_q2_K: scales[16], qs[64], d (f16), dmin (f16)
  for (let k = 0; k < blocks; k++) {
    const o = k * 84;
    const d = f16(b, o + 80);
    const min = f16(b, o + 82);
    let y = at + k * QK_K;
    let is = 0;
    for (let n = 0; n < 2; n++) {
      const q = o + 16 + n * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = b[o + is++]!;
          const dl = fr(d * (sc & 0x0f));
          const ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = fr(dl * ((b[q + half * 16 + l]! >> shift) & 3)) - ml;
        }
      }
    }
  }
}

function dequantQ3_K(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_q3_K: hmask[32], qs[64], scales[12], d (f16)
  const scales = new Int8Array(16);
  for (let k = 0; k < blocks; k++) {
    const o = k * 110;
    const d = f16(b, o + 108);
    const s = o + 96;
    // Unpack 16 6-bit scales: low 4 bits from bytes 0-7, high 2 bits from bytes 8-11.
    for (let i = 0; i < 16; i++) {
      const low = i < 8 ? b[s + i]! & 0x0f : b[s + i - 8]! >> 4;
      const high = (b[s + 8 + (i % 4)]! >> (2 * Math.floor(i / 4))) & 3;
      scales[i] = (low | (high << 4)) - 32;
    }
    let y = at + k * QK_K;
    let is = 0;
    let m = 1;
    for (let n = 0; n < 2; n++) {
      const q = o + 32 + n * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = fr(d * scales[is++]!);
          for (let l = 0; l < 16; l++) {
            const idx = half * 16 + l;
            const hbit = b[o + idx]! & m ? 0 : 4;
            out[y++] = dl * (((b[q + idx]! >> shift) & 3) - hbit);
          }
        }
        m <<= 1;
      }
    }
  }
}

function dequantQ4_K(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_q4_K: d (f16), dmin (f16), scales[12], qs[128]
  for (let k = 0; k < blocks; k++) {
    const o = k * 144;
    const d = f16(b, o);
    const min = f16(b, o + 2);
    let y = at + k * QK_K;
    let q = o + 16;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(is, b, o + 4);
      const [sc2, m2] = scaleMinK4(is + 1, b, o + 4);
      const d1 = fr(d * sc1);
      const d2 = fr(d * sc2);
      const mm1 = fr(min * m1);
      const mm2 = fr(min * m2);
      for (let l = 0; l < 32; l++) out[y++] = fr(d1 * (b[q + l]! & 0x0f)) - mm1;
      for (let l = 0; l < 32; l++) out[y++] = fr(d2 * (b[q + l]! >> 4)) - mm2;
      q += 32;
    }
  }
}

function dequantQ5_K(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_q5_K: d (f16), dmin (f16), scales[12], qh[32], qs[128]
  for (let k = 0; k < blocks; k++) {
    const o = k * 176;
    const d = f16(b, o);
    const min = f16(b, o + 2);
    const qh = o + 16;
    let ql = o + 48;
    let y = at + k * QK_K;
    let u1 = 1;
    let u2 = 2;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(is, b, o + 4);
      const [sc2, m2] = scaleMinK4(is + 1, b, o + 4);
      const d1 = fr(d * sc1);
      const d2 = fr(d * sc2);
      const mm1 = fr(min * m1);
      const mm2 = fr(min * m2);
      for (let l = 0; l < 32; l++) out[y++] = fr(d1 * ((b[ql + l]! & 0x0f) + (b[qh + l]! & u1 ? 16 : 0))) - mm1;
      for (let l = 0; l < 32; l++) out[y++] = fr(d2 * ((b[ql + l]! >> 4) + (b[qh + l]! & u2 ? 16 : 0))) - mm2;
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

function dequantQ6_K(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_q6_K: ql[128], qh[64], scales[16] (int8), d (f16)
  for (let k = 0; k < blocks; k++) {
    const o = k * 210;
    const d = f16(b, o + 208);
    for (let n = 0; n < 2; n++) {
      const ql = o + n * 64;
      const qh = o + 128 + n * 32;
      const sc = o + 192 + n * 8;
      const y = at + k * QK_K + n * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = fr(d * ((b[sc + is]! << 24) >> 24)) * q1;
        out[y + l + 32] = fr(d * ((b[sc + is + 2]! << 24) >> 24)) * q2;
        out[y + l + 64] = fr(d * ((b[sc + is + 4]! << 24) >> 24)) * q3;
        out[y + l + 96] = fr(d * ((b[sc + is + 6]! << 24) >> 24)) * q4;
      }
    }
  }
}

function dequantQ8_K(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_q8_K: d (f32), qs[256] (int8), bsums[16] (int16)
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let k = 0; k < blocks; k++) {
    const o = k * 292;
    const d = dv.getFloat32(o, true);
    const y = at + k * QK_K;
    for (let j = 0; j < QK_K; j++) out[y + j] = d * ((b[o + 4 + j]! << 24) >> 24);
  }
}

/** Non-linear 4-bit codebook shared by IQ4_NL and IQ4_XS. */
const IQ4NL_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

function dequantIQ4_NL(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 18;
    const d = f16(b, o);
    const y = at + k * QK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j]!;
      out[y + j] = d * IQ4NL_VALUES[q & 0x0f]!;
      out[y + j + 16] = d * IQ4NL_VALUES[q >> 4]!;
    }
  }
}

function dequantIQ4_XS(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  // block_iq4_xs: d (f16), scales_h (u16), scales_l[4], qs[128]
  for (let k = 0; k < blocks; k++) {
    const o = k * 136;
    const d = f16(b, o);
    const scalesH = b[o + 2]! | (b[o + 3]! << 8);
    let y = at + k * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((b[o + 4 + (ib >> 1)]! >> (4 * (ib & 1))) & 0x0f) | (((scalesH >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const qs = o + 8 + ib * 16;
      for (let j = 0; j < 16; j++) {
        out[y + j] = dl * IQ4NL_VALUES[b[qs + j]! & 0x0f]!;
        out[y + j + 16] = dl * IQ4NL_VALUES[b[qs + j]! >> 4]!;
      }
      y += 32;
    }
  }
}

/** MXFP4: an E8M0 scale and 32 E2M1 codes; ggml stores the codes doubled and halves the scale. */
const MXFP4_VALUES = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

function dequantMXFP4(b: Uint8Array, out: Float32Array, at: number, blocks: number): void {
  for (let k = 0; k < blocks; k++) {
    const o = k * 17;
    const e = b[o]!;
    const d = 2 ** (e - 128);
    const y = at + k * QK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 1 + j]!;
      out[y + j] = MXFP4_VALUES[q & 0x0f]! * d;
      out[y + j + 16] = MXFP4_VALUES[q >> 4]! * d;
    }
  }
}

const bf16 = (dv: DataView, i: number) => {
  const u = new Uint32Array(1);
  u[0] = dv.getUint16(i, true) << 16;
  return new Float32Array(u.buffer)[0]!;
};

/** ggml_type ids (ggml.h). Gaps are ids that ggml removed. */
export const GGML_TYPES: Record<number, GgmlType> = {
  0: { name: 'F32', blockElements: 1, blockBytes: 4, dequantize: plain((dv, i) => dv.getFloat32(i, true), 4) },
  1: {
    name: 'F16',
    blockElements: 1,
    blockBytes: 2,
    dequantize: plain((dv, i) => halfToFloat(dv.getUint16(i, true)), 2),
  },
  2: { name: 'Q4_0', blockElements: QK, blockBytes: 18, dequantize: dequantQ4_0 },
  3: { name: 'Q4_1', blockElements: QK, blockBytes: 20, dequantize: dequantQ4_1 },
  6: { name: 'Q5_0', blockElements: QK, blockBytes: 22, dequantize: dequantQ5_0 },
  7: { name: 'Q5_1', blockElements: QK, blockBytes: 24, dequantize: dequantQ5_1 },
  8: { name: 'Q8_0', blockElements: QK, blockBytes: 34, dequantize: dequantQ8_0 },
  9: { name: 'Q8_1', blockElements: QK, blockBytes: 36, dequantize: dequantQ8_1 },
  10: { name: 'Q2_K', blockElements: QK_K, blockBytes: 84, dequantize: dequantQ2_K },
  11: { name: 'Q3_K', blockElements: QK_K, blockBytes: 110, dequantize: dequantQ3_K },
  12: { name: 'Q4_K', blockElements: QK_K, blockBytes: 144, dequantize: dequantQ4_K },
  13: { name: 'Q5_K', blockElements: QK_K, blockBytes: 176, dequantize: dequantQ5_K },
  14: { name: 'Q6_K', blockElements: QK_K, blockBytes: 210, dequantize: dequantQ6_K },
  15: { name: 'Q8_K', blockElements: QK_K, blockBytes: 292, dequantize: dequantQ8_K },
  16: { name: 'IQ2_XXS', blockElements: QK_K, blockBytes: 66 },
  17: { name: 'IQ2_XS', blockElements: QK_K, blockBytes: 74 },
  18: { name: 'IQ3_XXS', blockElements: QK_K, blockBytes: 98 },
  19: { name: 'IQ1_S', blockElements: QK_K, blockBytes: 50 },
  20: { name: 'IQ4_NL', blockElements: QK, blockBytes: 18, dequantize: dequantIQ4_NL },
  21: { name: 'IQ3_S', blockElements: QK_K, blockBytes: 110 },
  22: { name: 'IQ2_S', blockElements: QK_K, blockBytes: 82 },
  23: { name: 'IQ4_XS', blockElements: QK_K, blockBytes: 136, dequantize: dequantIQ4_XS },
  24: { name: 'I8', blockElements: 1, blockBytes: 1, dequantize: plain((dv, i) => dv.getInt8(i), 1) },
  25: { name: 'I16', blockElements: 1, blockBytes: 2, dequantize: plain((dv, i) => dv.getInt16(i, true), 2) },
  26: { name: 'I32', blockElements: 1, blockBytes: 4, dequantize: plain((dv, i) => dv.getInt32(i, true), 4) },
  27: {
    name: 'I64',
    blockElements: 1,
    blockBytes: 8,
    dequantize: plain((dv, i) => Number(dv.getBigInt64(i, true)), 8),
  },
  28: { name: 'F64', blockElements: 1, blockBytes: 8, dequantize: plain((dv, i) => dv.getFloat64(i, true), 8) },
  29: { name: 'IQ1_M', blockElements: QK_K, blockBytes: 56 },
  30: { name: 'BF16', blockElements: 1, blockBytes: 2, dequantize: plain(bf16, 2) },
  34: { name: 'TQ1_0', blockElements: QK_K, blockBytes: 54 },
  35: { name: 'TQ2_0', blockElements: QK_K, blockBytes: 66 },
  39: { name: 'MXFP4', blockElements: QK, blockBytes: 17, dequantize: dequantMXFP4 },
  40: { name: 'NVFP4', blockElements: 64, blockBytes: 36 },
  41: { name: 'Q1_0', blockElements: 128, blockBytes: 18 },
};
