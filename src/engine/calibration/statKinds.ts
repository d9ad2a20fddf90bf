/** The statistics a calibration file can hold per weight. Node-free, so webviews may import it. */
export const STATS_SUFFIXES = ['act_mean_abs', 'act_rms', 'act_gram', 'act_samples'] as const;
export type StatKind = (typeof STATS_SUFFIXES)[number];

/**
 * The statistics-file name for a checkpoint's weight: the weight's own name when the file has it,
 * else the one name that equals it up to leading dotted components. Calibrating an ONNX export of a
 * wrapped module keys statistics by the graph's names (`m.model.layers.0.mlp.up_proj.weight`) while
 * the safetensors checkpoint says `model.layers.0.mlp.up_proj.weight`; the suffix must be whole
 * components and unique, so `layers.1.…` never pairs with `layers.11.…`.
 */
export function statsNameFor(names: Iterable<string>, weight: string): string | undefined {
  let found: string | undefined;
  let count = 0;
  for (const n of names) {
    if (n === weight) return n;
    const [long, short] = n.length > weight.length ? [n, weight] : [weight, n];
    if (long.endsWith(short) && long.charAt(long.length - short.length - 1) === '.') {
      found = n;
      count++;
    }
  }
  return count === 1 ? found : undefined;
}
