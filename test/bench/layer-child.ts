/**
 * Quant Lens side of test/bench/run.ts for one layer, run in its own process (so that nothing else
 * of the benchmark shares it): the product's worker handler analyses the layer and the times of
 * its stages are printed as one JSON line.
 *
 *   tsx layer-child.ts CHECKPOINT LAYER STATS MODE [OUT_PREFIX]
 *
 * MODE 'lqer': LQER rank 32 with the spectrum of E; 'l2qer': L²QER rank 32 with both spectra.
 * With OUT_PREFIX the error E (float32), the L²QER scale (float64) and the spectra (float64) are
 * written as OUT_PREFIX.error.bin, .scale.bin, .plain.bin and .scaled.bin for the accuracy check.
 */
import { writeFileSync } from 'node:fs';
import { fakeQuantize, parseFormat } from '../../src/engine/quantizers';
import { openCheckpoint } from '../../src/engine/readers/open';
import { createHandlers } from '../../src/worker/handlers';

const bytes = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function main(): Promise<void> {
  const [ckpt, layer, stats, mode, out] = process.argv.slice(2) as [string, string, string, string, string?];
  if (out) {
    const c = await openCheckpoint(ckpt);
    const w = await c.readWeight(layer);
    const q = fakeQuantize(w.data, w.out, w.in, parseFormat('mxint4'));
    writeFileSync(`${out}.error.bin`, bytes(Float32Array.from(w.data, (x, i) => x - q[i]!)));
    await c.close();
  }
  const h = createHandlers();
  const ctx = { signal: new AbortController().signal, progress: () => undefined };
  await h.openCheckpoint({ path: ckpt }, ctx);
  const t0 = performance.now();
  const a = await h.analyzeLayer(
    {
      checkpoint: ckpt,
      layer,
      settings: {
        method: mode === 'l2qer' ? 'l2qer' : 'lqer',
        weightFormat: 'mxint4',
        factorFormat: 'mxint8',
        factorTiling: 'last-dim',
        maxRank: 32,
      },
      ...(mode === 'l2qer' ? { calibration: stats } : {}),
    },
    ctx,
  );
  const totalMs = performance.now() - t0;
  if (out) {
    writeFileSync(`${out}.plain.bin`, bytes(a.sigmaPlain));
    writeFileSync(`${out}.scaled.bin`, bytes(a.sigmaScaled));
    if (a.scale) writeFileSync(`${out}.scale.bin`, bytes(a.scale));
  }
  const t = a.timings;
  const spectraMs = (t.gram ?? 0) + (t.spectrum ?? 0);
  process.stdout.write(JSON.stringify({ totalMs, spectraMs, timings: t }) + '\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
