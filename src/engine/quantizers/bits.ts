/**
 * Exact storage of a quantized matrix: element bits plus every scale, exponent and zero point,
 * counting ragged tiles as whole tiles. What each format stores per tile is documented in its own
 * file (its FormatFamily's `storage`) and in docs/algorithms.md §2.
 */
import { familyOf, type NumberFormat } from './formats';
import { storageBreakdown, type StorageBreakdown } from './formatFamily';

/** Storage of a rows×cols matrix in `format`. */
export function storageOf(format: NumberFormat, rows: number, cols: number): StorageBreakdown {
  if (rows * cols === 0) return storageBreakdown(0, 0, 0);
  return familyOf(format).storage(format, rows, cols);
}

/**
 * Bits per element of a rows×cols matrix, metadata included: MXINT4 block 16 = 4.5,
 * INT4 g128 asym = 4 + (16 + 4)/128, MXFP4 = 4.25, NVFP4 = 4 + 8/16 + 32/(rows·cols).
 */
export function bitsPerElement(format: NumberFormat, rows: number, cols: number): number {
  return storageOf(format, rows, cols).bitsPerElement;
}
