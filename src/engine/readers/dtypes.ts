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
  return { reason: `${t} (packed 6-bit floats) is listed but not decoded` };
}

const F16_TABLE = /* @__PURE__ */ (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function halfToFloat(h: number): number {
  return F16_TABLE[h & 0xffff]!;
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

/**
 * Decodes little-endian elements to float32. `bytes` must hold exactly `count` elements.
 * 64-bit integers lose precision beyond 2^24 as float32 does; they are never weights anyway.
 */
export function decodeToFloat32(t: ElementType, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (t) {
    case 'F32':
      if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
      else for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = F16_TABLE[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
      break;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
      break;
    }
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'F8_E4M3FNUZ':
    case 'F8_E5M2FNUZ': {
      const table = fp8(t);
      for (let i = 0; i < count; i++) out[i] = table[bytes[i]!]!;
      break;
    }
    case 'F8_E8M0':
      for (let i = 0; i < count; i++) out[i] = bytes[i] === 0xff ? NaN : 2 ** (bytes[i]! - 127);
      break;
    case 'F4':
      // Two E2M1 codes per byte, low nibble first.
      for (let i = 0; i < count; i++) out[i] = FP4_E2M1[(bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf]!;
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = bytes[i]!;
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(2 * i, true);
      break;
    case 'U16':
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(2 * i, true);
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(4 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < count; i++) out[i] = dv.getUint32(4 * i, true);
      break;
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      break;
    case 'U64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigUint64(8 * i, true));
      break;
    default:
      throw new Error(`no float32 decoder for ${t}`);
  }
  return out;
}
