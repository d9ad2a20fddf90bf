/**
 * Fake quantization (quantize, then dequantize) of a row-major matrix to any NumberFormat.
 * Each format's file documents its exact arithmetic; this module only checks shapes and routes
 * through the format registry.
 */
import { QuantLensError } from '../errors';
import { familyOf, type NumberFormat } from './formats';
import { checkMatrix } from './tiling';

export interface FakeQuantizeOptions {
  /**
   * Where to write the result (length rows·cols). It may be `data` itself: every kernel reads the
   * statistics of a band of rows before writing into it. Default: a new array.
   */
  readonly out?: Float32Array;
  /**
   * Per-column importance (length cols) for formats that weigh elements by it: llama.cpp's
   * importance matrix, the mean of x² of each input channel (act_rms²). Required by `…:imatrix`
   * formats, ignored by the others.
   */
  readonly importance?: Float32Array | null;
}

/**
 * Quantizes then dequantizes `data` (rows×cols, row-major) to `format`, tile by tile as the
 * format's `tile` says. Returns the output array. Inputs are expected finite; a NaN element comes
 * out NaN and does not change its tile's scale.
 */
export function fakeQuantize(
  data: Float32Array,
  rows: number,
  cols: number,
  format: NumberFormat,
  options: FakeQuantizeOptions = {},
): Float32Array {
  checkMatrix(data, rows, cols);
  const out = options.out ?? new Float32Array(data.length);
  if (out.length !== data.length) {
    throw new QuantLensError('bad-argument', `output array has ${out.length} values, the matrix ${data.length}`);
  }
  familyOf(format).fakeQuantize(data, rows, cols, format, out, options.importance ?? null);
  return out;
}
