/** "No quantization": the weights stay as they are; only their storage width is accounted. */
import { FormatSyntaxError, storageBreakdown, type FormatFamily } from './formatFamily';

/** No quantization; `bits` is only what the original is assumed to be stored in. */
export interface FloatFormat {
  readonly kind: 'float';
  readonly bits: 16 | 32;
}

const FLOAT_NAMES: Readonly<Record<string, 16 | 32>> = {
  // Checkpoints are stored in half precision, so "no quantization" costs 16 bits per weight.
  float: 16,
  none: 16,
  fp16: 16,
  bf16: 16,
  float16: 16,
  bfloat16: 16,
  fp32: 32,
  float32: 32,
};

export const floatFamily: FormatFamily<FloatFormat> = {
  kind: 'float',
  syntax: 'fp16 | bf16 | fp32 | float | none   (no quantization)',
  summary: 'fp16',
  weightChoices: [],
  factorChoices: ['fp16'],
  tiling: 'none',
  parse(base, options) {
    const bits = FLOAT_NAMES[base];
    if (bits === undefined) return undefined;
    if (options.length > 0) throw new FormatSyntaxError('unquantized formats take no options');
    return { kind: 'float', bits };
  },
  print: (f) => (f.bits === 16 ? 'fp16' : 'fp32'),
  label: (f) => `FP${f.bits} (unquantized)`,
  defaultTile: () => undefined,
  storage: (f, rows, cols) => storageBreakdown(rows * cols, f.bits, 0),
  fakeQuantize(data, _rows, _cols, _f, out) {
    if (out !== data) out.set(data);
  },
};
