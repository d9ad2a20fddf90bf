/**
 * Element types of stored tensors and their decoding to float32. Sizes are kept in bits because
 * safetensors has sub-byte types (F4, F6_*).
 */

export type ElementType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'F8_E4M3FNUZ'
  | 'F8_E5M2FNUZ'
  | 'F8_E8M0'
  | 'F6_E2M3'
  | 'F6_E3M2'
  | 'F4'
  | 'I4'
  | 'U4'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'C64';

export const ELEMENT_BITS: Record<ElementType, number> = {
  F64: 64,
  F32: 32,
  F16: 16,
  BF16: 16,
  F8_E4M3: 8,
  F8_E5M2: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  F8_E8M0: 8,
  F6_E2M3: 6,
  F6_E3M2: 6,
  F4: 4,
  I4: 4,
  U4: 4,
  I64: 64,
  I32: 32,
  I16: 16,
  I8: 8,
  U64: 64,
  U32: 32,
  U16: 16,
  U8: 8,
  BOOL: 8,
  C64: 64,
};

export function isElementType(s: string): s is ElementType {
  return Object.prototype.hasOwnProperty.call(ELEMENT_BITS, s);
}

/** The dtypes the safetensors format defines (I4/U4 are ONNX's and are not among them). */
export function isSafetensorsDtype(s: string): s is ElementType {
  return isElementType(s) && s !== 'I4' && s !== 'U4';
}

/** Bytes that `count` elements occupy, rounding sub-byte types up to whole bytes. */
export function byteLengthOf(t: ElementType, count: number): number {
  return Math.ceil((count * ELEMENT_BITS[t]) / 8);
}

/** Types `decodeToFloat32` handles; the rest are listed but not analysed. */
const DECODABLE = new Set<ElementType>([
  'F64',
  'F32',
  'F16',
  'BF16',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'F8_E8M0',
  'F4',
  'I4',
  'U4',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
]);

export function decodableReason(t: ElementType): true | { reason: string } {
  if (DECODABLE.has(t)) return true;
  if (t === 'C64') return { reason: 'complex tensors are not weights of a linear layer' };
  return {
    reason: `${t} (packed 6-bit floats) is listed but not decoded: the packing order of 6-bit codes is not pinned down by the format`,
  };
}

/** float16 → float32 for all 65536 codes; built on first use so that loading the module stays cheap. */
let f16Table: Float32Array | undefined;
function f16Codes(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (f16Table = t);
}

export function halfToFloat(h: number): number {
  return (f16Table ?? f16Codes())[h & 0xffff]!;
}

const halfScratchF32 = new Float32Array(1);
const halfScratchU32 = new Uint32Array(halfScratchF32.buffer);

/**
 * float32 → IEEE half bits with round-to-nearest-even, overflow to ±inf, NaN kept NaN (quiet);
 * the conversion torch, numpy and ggml's GGML_FP32_TO_FP16 perform. `x` is rounded to float32 first.
 */
export function floatToHalf(x: number): number {
  halfScratchF32[0] = x;
  const u = halfScratchU32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  let ee = e;
  if (rem > 0x1000 || (rem === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      ee++;
    }
  }
  return ee >= 0x1f ? sign | 0x7c00 : sign | (ee << 10) | m;
}

/** 256-entry tables for the 8-bit float types; built once. */
function fp8Table(expBits: number, manBits: number, variant: 'fn' | 'ieee' | 'fnuz'): Float32Array {
  const t = new Float32Array(256);
  const bias = variant === 'fnuz' ? 1 << (expBits - 1) : (1 << (expBits - 1)) - 1;
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const e = (b >> manBits) & ((1 << expBits) - 1);
    const m = b & ((1 << manBits) - 1);
    let v: number;
    if (variant === 'fnuz' && b === 0x80) v = NaN;
    else if (variant === 'fn' && e === (1 << expBits) - 1 && m === (1 << manBits) - 1) v = NaN;
    else if (variant === 'ieee' && e === (1 << expBits) - 1) v = m ? NaN : sign * Infinity;
    else if (e === 0) v = sign * m * 2 ** (1 - bias - manBits);
    else v = sign * (1 + m / (1 << manBits)) * 2 ** (e - bias);
    t[b] = v;
  }
  return t;
}

let fp8Tables: Record<'F8_E4M3' | 'F8_E5M2' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ', Float32Array> | undefined;
function fp8(t: 'F8_E4M3' | 'F8_E5M2' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ'): Float32Array {
  fp8Tables ??= {
    F8_E4M3: fp8Table(4, 3, 'fn'),
    F8_E5M2: fp8Table(5, 2, 'ieee'),
    F8_E4M3FNUZ: fp8Table(4, 3, 'fnuz'),
    F8_E5M2FNUZ: fp8Table(5, 2, 'fnuz'),
  };
  return fp8Tables[t];
}

/** E2M1 values for the 16 codes of OCP FP4 (sign in bit 3). */
const FP4_E2M1 = new Float32Array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);

/** Typed-array views read in the host's byte order; every platform Node ships for is little-endian, but check. */
export const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Signed 4-bit values (two's complement) for the 16 codes. */
const INT4 = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1]);

/**
 * Decodes little-endian elements to float32. `bytes` must hold exactly `count` elements.
 * 64-bit integers lose precision beyond 2^24 as float32 does; they are never weights anyway.
 */
export function decodeToFloat32(t: ElementType, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  decodeInto(t, bytes, out, 0, count);
  return out;
}

/**
 * Decodes `count` elements from the start of `bytes` into `out` at `at`. Sub-byte types start on a
 * byte boundary, so callers that decode in chunks cut them at an even element index.
 */
export function decodeInto(t: ElementType, bytes: Uint8Array, out: Float32Array, at: number, count: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (t) {
    case 'F32':
      if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count), at);
      else for (let i = 0; i < count; i++) out[at + i] = dv.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[at + i] = dv.getFloat64(8 * i, true);
      break;
    case 'F16': {
      const table = f16Codes();
      if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
        const h = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
        for (let i = 0; i < count; i++) out[at + i] = table[h[i]!]!;
      } else for (let i = 0; i < count; i++) out[at + i] = table[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
      break;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place.
      const u = new Uint32Array(out.buffer, out.byteOffset + 4 * at, count);
      if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
        const h = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
        for (let i = 0; i < count; i++) u[i] = h[i]! << 16;
      } else for (let i = 0; i < count; i++) u[i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
      break;
    }
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'F8_E4M3FNUZ':
    case 'F8_E5M2FNUZ': {
      const table = fp8(t);
      for (let i = 0; i < count; i++) out[at + i] = table[bytes[i]!]!;
      break;
    }
    case 'F8_E8M0':
      for (let i = 0; i < count; i++) out[at + i] = bytes[i] === 0xff ? NaN : 2 ** (bytes[i]! - 127);
      break;
    case 'F4':
      // Two E2M1 codes per byte, low nibble first.
      for (let i = 0; i < count; i++) out[at + i] = FP4_E2M1[(bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf]!;
      break;
    case 'I4':
      for (let i = 0; i < count; i++) out[at + i] = INT4[(bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf]!;
      break;
    case 'U4':
      for (let i = 0; i < count; i++) out[at + i] = (bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf;
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[at + i] = dv.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < count; i++) out[at + i] = bytes[i]!;
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[at + i] = dv.getInt16(2 * i, true);
      break;
    case 'U16':
      for (let i = 0; i < count; i++) out[at + i] = dv.getUint16(2 * i, true);
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[at + i] = dv.getInt32(4 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < count; i++) out[at + i] = dv.getUint32(4 * i, true);
      break;
    case 'I64':
      for (let i = 0; i < count; i++) out[at + i] = Number(dv.getBigInt64(8 * i, true));
      break;
    case 'U64':
      for (let i = 0; i < count; i++) out[at + i] = Number(dv.getBigUint64(8 * i, true));
      break;
    default:
      throw new Error(`no float32 decoder for ${t}`);
  }
}

/** Counts NaN and ±Inf entries: allowed in a checkpoint, but reported per layer. */
export function countNonFinite(data: Float32Array): { nan: number; inf: number } {
  const counts = { nan: 0, inf: 0 };
  addNonFinite(data, counts);
  return counts;
}

/** Adds the NaN and ±Inf entries of `data` to `counts` (for a tensor read in parts). */
export function addNonFinite(data: Float32Array, counts: { nan: number; inf: number }): void {
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) inf++;
  }
  counts.nan += nan;
  counts.inf += inf;
}
