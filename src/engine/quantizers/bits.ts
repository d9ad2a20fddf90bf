/**
 * Exact storage of a quantized matrix: element bits plus every scale, exponent and zero point,
 * counting ragged tiles as whole tiles. The conventions (what each scale is stored in) are spelled
 * out in STORAGE_CONVENTIONS so the UI can show them next to the numbers.
 */
import type { NumberFormat } from './format';
import { MINIFLOATS } from './minifloat';
import { tileCount } from './tiling';

/** Bits of the per-tile metadata, by format. */
export const STORAGE_CONVENTIONS = {
  /** MXINT: one shared exponent of `exponentBits` (8: E8M0-like) per tile. */
  mxintExponentBits: 'exponentBits',
  /** INT: an fp16 scale per group … */
  intScaleBits: 16,
  /** … and, when asymmetric, an n-bit zero point per group (n = element width; GPTQ packing). */
  intZeroPointBits: 'bits',
  /** MXFP: one E8M0 scale per tile. */
  mxfpScaleBits: 8,
  /** NVFP4: one FP8-E4M3 scale per tile … */
  nvfp4BlockScaleBits: 8,
  /** … plus one FP32 scale for the whole tensor. */
  nvfp4TensorScaleBits: 32,
  /** FP8 per-channel: one FP32 scale per tile (row). */
  fp8ScaleBits: 32,
} as const;

export interface StorageBreakdown {
  readonly elements: number;
  /** Bits of the quantized elements themselves. */
  readonly elementBits: number;
  /** Bits of scales, exponents and zero points. */
  readonly metadataBits: number;
  readonly totalBits: number;
  /** totalBits / elements (0 for an empty matrix). */
  readonly bitsPerElement: number;
}

function breakdown(elements: number, bitsEach: number, metadataBits: number): StorageBreakdown {
  const elementBits = elements * bitsEach;
  const totalBits = elementBits + metadataBits;
  return { elements, elementBits, metadataBits, totalBits, bitsPerElement: elements > 0 ? totalBits / elements : 0 };
}

/** Storage of a rows×cols matrix in `format`. */
export function storageOf(format: NumberFormat, rows: number, cols: number): StorageBreakdown {
  const elements = rows * cols;
  if (elements === 0) return breakdown(0, 0, 0);
  switch (format.kind) {
    case 'mxint':
      return breakdown(elements, format.bits, tileCount(rows, cols, format.tile) * format.exponentBits);
    case 'int': {
      const perGroup = STORAGE_CONVENTIONS.intScaleBits + (format.symmetric ? 0 : format.bits);
      return breakdown(elements, format.bits, tileCount(rows, cols, format.tile) * perGroup);
    }
    case 'mxfp':
      return breakdown(
        elements,
        MINIFLOATS[format.element].bits,
        tileCount(rows, cols, format.tile) * STORAGE_CONVENTIONS.mxfpScaleBits,
      );
    case 'nvfp4':
      return breakdown(
        elements,
        MINIFLOATS.e2m1.bits,
        tileCount(rows, cols, format.tile) * STORAGE_CONVENTIONS.nvfp4BlockScaleBits +
          STORAGE_CONVENTIONS.nvfp4TensorScaleBits,
      );
    case 'fp8':
      return breakdown(
        elements,
        MINIFLOATS.e4m3.bits,
        tileCount(rows, cols, format.tile) * STORAGE_CONVENTIONS.fp8ScaleBits,
      );
    case 'float':
      return breakdown(elements, format.bits, 0);
  }
}

/**
 * Bits per element of a rows×cols matrix, metadata included: MXINT4 block 16 = 4.5,
 * INT4 g128 asym = 4 + (16 + 4)/128, MXFP4 = 4.25, NVFP4 = 4 + 8/16 + 32/(rows·cols).
 */
export function bitsPerElement(format: NumberFormat, rows: number, cols: number): number {
  return storageOf(format, rows, cols).bitsPerElement;
}
