/**
 * Fake quantization (quantize, then dequantize) of a row-major matrix to any NumberFormat.
 * Each format's kernel documents its exact arithmetic; this module only routes and checks shapes.
 */
import { QuantLensError } from '../errors';
import type { NumberFormat } from './format';
import { fakeQuantizeFp8 } from './fp8';
import { fakeQuantizeIntAsymmetric, fakeQuantizeIntSymmetric } from './intGroup';
import { fakeQuantizeMxfp } from './mxfp';
import { fakeQuantizeMxintLqer, fakeQuantizeMxintQera } from './mxint';
import { fakeQuantizeNvfp4 } from './nvfp4';
import { checkMatrix } from './tiling';

export interface FakeQuantizeOptions {
  /**
   * Where to write the result (length rows·cols). It may be `data` itself: every kernel reads the
   * statistics of a band of rows before writing into it. Default: a new array.
   */
  readonly out?: Float32Array;
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
  switch (format.kind) {
    case 'mxint':
      if (format.flavour === 'lqer') fakeQuantizeMxintLqer(data, rows, cols, format, out);
      else fakeQuantizeMxintQera(data, rows, cols, format, out);
      break;
    case 'int':
      if (format.symmetric) fakeQuantizeIntSymmetric(data, rows, cols, format, out);
      else fakeQuantizeIntAsymmetric(data, rows, cols, format, out);
      break;
    case 'mxfp':
      fakeQuantizeMxfp(data, rows, cols, format, out);
      break;
    case 'nvfp4':
      fakeQuantizeNvfp4(data, rows, cols, format, out);
      break;
    case 'fp8':
      fakeQuantizeFp8(data, rows, cols, format, out);
      break;
    case 'float':
      if (out !== data) out.set(data);
      break;
  }
  return out;
}
