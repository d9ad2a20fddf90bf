/**
 * Storage dtypes for exported float tensors: the narrowest that holds a tensor exactly, or a fixed
 * one. W_q of an MX format (a small integer or minifloat times a power of two) is exact in BF16;
 * INT groups, NVFP4 and FP8 scale by arbitrary float32 numbers and need F32. Checked on the values
 * rather than derived from the format, because a quantizer may pass some values through (LQER's
 * MXINT keeps |x| ≤ 1e-8 as it is).
 */
import { halfToFloat } from '../readers/dtypes';
import { bf16Bytes, f16Bytes, f32Bytes } from '../writers/safetensorsWriter';
import type { ExportDType } from './target';

/** Every value is a bfloat16: its low 16 bits are zero (NaNs count as exact whatever their payload). */
export function exactInBf16(a: Float32Array): boolean {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0xffff) !== 0 && (x & 0x7fffffff) <= 0x7f800000) return false;
  }
  return true;
}

/** Every value survives float32 → float16 → float32 unchanged. */
export function exactInF16(a: Float32Array): boolean {
  const h = f16Bytes(a);
  const v = new Uint16Array(h.buffer, h.byteOffset, a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const back = halfToFloat(v[i]!);
    if (back !== x && !(Number.isNaN(x) && Number.isNaN(back))) return false;
    // ±0 must keep its sign: 1/0 and 1/−0 differ.
    if (x === 0 && 1 / back !== 1 / x) return false;
  }
  return true;
}

/** The narrowest of BF16, F16, F32 that holds every value exactly. */
export function narrowestExact(a: Float32Array): ExportDType {
  if (exactInBf16(a)) return 'BF16';
  if (exactInF16(a)) return 'F16';
  return 'F32';
}

export function encodeAs(a: Float32Array, dtype: ExportDType): Uint8Array {
  if (dtype === 'BF16') return bf16Bytes(a);
  if (dtype === 'F16') return f16Bytes(a);
  return f32Bytes(a);
}

/** `dtype`, or the narrowest exact one when null; with the bytes. */
export function stored(a: Float32Array, dtype: ExportDType | null): { dtype: ExportDType; bytes: Uint8Array } {
  const d = dtype ?? narrowestExact(a);
  return { dtype: d, bytes: encodeAs(a, d) };
}
