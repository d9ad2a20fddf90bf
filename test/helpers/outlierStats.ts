/**
 * A statistics file for a test checkpoint's layers: `tokens` random activations per layer whose
 * first `outliers` input channels are `big`× the rest, the shape activation outliers give real
 * layers (an L²QER scale with a few large channels).
 */
import { ActivationAccumulator } from '../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../src/engine/calibration/statsFile';
import { scratchOutput } from './output';

export async function writeOutlierStats(
  path: string,
  layers: readonly { name: string; shape: readonly number[] }[],
  opts: { tokens: number; outliers: number; big: number; random: () => number },
): Promise<void> {
  const stats = new Map();
  for (const l of layers) {
    const nIn = l.shape[1]!;
    const acc = new ActivationAccumulator(nIn);
    acc.addBatch(
      Float32Array.from(
        { length: opts.tokens * nIn },
        (_, i) => opts.random() * (i % nIn < opts.outliers ? opts.big : 1),
      ),
      opts.tokens,
    );
    stats.set(l.name, acc.finish());
  }
  await writeStatsFile(await scratchOutput(path), stats);
}
