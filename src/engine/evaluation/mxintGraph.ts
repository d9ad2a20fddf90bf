/**
 * MXINT fake quantization of an activation, built from standard ONNX operators, with LQER's
 * `block_fp` definition (docs/algorithms.md §2.1), the one `quantizers/mxint.ts` reproduces bit for bit:
 *   per block of `block` consecutive features of one token: E = ceil(log2 max|x|), clamped to
 *   [−127, 128]; code = round_half_even((|x| + 1e-9) · 2^(w−1) / 2^E) clamped to 2^(w−1) − 1;
 *   x̂ = sign(x)·code·2^E / 2^(w−1); elements with |x| ≤ 1e-8 pass through unchanged.
 *
 * ONNX has no log2 and no bit casts, so E comes from Log(max)/ln 2 and is then corrected with two
 * exact power-of-two comparisons: the result is the exact ceil(log2 max). The reference rounds
 * log2 to float32 first, so a block max within ~2^-20 (relative) above a power of two keeps the
 * lower exponent there and clips; here it takes the next exponent. That is the only difference
 * (a max that close to a power of two is rare in real activations; the unit test checks random
 * data bit for bit).
 */
import type { GraphBuilder } from './graphBuilder';

export interface ActivationQuantSpec {
  /** Element width w (sign + w−1 magnitude bits). */
  bits: number;
  /** Features per shared exponent. */
  block: number;
}

/**
 * Quantizes `x` whose features run along `layout`'s channel axis: the last axis ('last'), or axis 1
 * of an NCHW tensor ('nchw'). `channels` is the feature count. Returns the quantized value's name.
 */
export function mxintFakeQuant(
  b: GraphBuilder,
  x: string,
  channels: number,
  layout: 'last' | 'nchw',
  spec: ActivationQuantSpec,
): string {
  const { bits, block } = spec;
  const source = layout === 'nchw' ? b.transpose(x, [0, 2, 3, 1]) : x;
  const shape = b.op('Shape', [source]);
  let rows = b.reshape(source, [-1, channels]);
  const padded = Math.ceil(channels / block) * block;
  // Ragged last blocks: zero padding never changes a block's max, and is cut off afterwards.
  if (padded > channels) rows = b.padColumns(rows, padded - channels);
  const blocks = b.reshape(rows, [-1, block]);

  const magnitude = b.op('Abs', [blocks]);
  const blockMax = b.reduceMax(magnitude, [1], true);
  const two = b.scalar(2);
  const one = b.scalar(1);
  const estimate = b.op('Ceil', [b.op('Mul', [b.op('Log', [blockMax]), b.scalar(1 / Math.LN2)])]);
  // Log is approximate: step down when 2^(e−1) already covers the max, up when 2^e does not.
  const below = b.op('Pow', [two, b.op('Sub', [estimate, one])]);
  const lowered = b.op('Sub', [estimate, b.castFloat(b.op('Not', [b.op('Less', [below, blockMax])]))]);
  const above = b.op('Pow', [two, lowered]);
  const exact = b.op('Add', [lowered, b.castFloat(b.op('Less', [above, blockMax]))]);
  const exponent = b.op('Min', [b.op('Max', [exact, b.scalar(-127)]), b.scalar(128)]);

  const fraction = bits - 1;
  const inverseStep = b.op('Pow', [two, b.op('Sub', [b.scalar(fraction), exponent])]);
  const step = b.op('Pow', [two, b.op('Sub', [exponent, b.scalar(fraction)])]);
  // (|x| + 1e-9) in float32, as the reference adds its nudge; ×2^(w−1−E) is exact.
  const scaled = b.op('Mul', [b.op('Add', [magnitude, b.scalar(1e-9)]), inverseStep]);
  const code = b.op('Min', [b.roundNonNegative(scaled), b.scalar(2 ** fraction - 1)]);
  const quantized = b.op('Mul', [b.op('Mul', [code, step]), b.op('Sign', [blocks])]);
  const keep = b.op('Greater', [magnitude, b.scalar(Math.fround(1e-8))]);
  const mixed = b.op('Where', [keep, quantized, blocks]);

  let out = b.reshape(mixed, [-1, padded]);
  if (padded > channels) out = b.sliceColumns(out, channels);
  out = b.reshape(out, shape);
  return layout === 'nchw' ? b.transpose(out, [0, 3, 1, 2]) : out;
}
