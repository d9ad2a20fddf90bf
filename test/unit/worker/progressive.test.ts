/**
 * The worker's analyzeLayer as the layer panel calls it: with `progressive`, partial results arrive
 * as progress (curves to the slider's rank, the top of both spectra) before the full result, and
 * cancelling stops the work a newer setting made stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivationAccumulator } from '../../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../../src/engine/calibration/statsFile';
import type { AnalysisProgress } from '../../../src/shared/workerProtocol';
import { createHandlers } from '../../../src/worker/handlers';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { rng } from '../methods/helpers';
import { scratchOutput } from '../../helpers/output';

const NAME = 'model.layers.0.mlp.up_proj.weight';
const settings = {
  method: 'l2qer',
  weightFormat: 'mxint4',
  factorFormat: 'mxint8',
  factorTiling: 'last-dim',
  maxRank: 120,
} as const;

async function fixture(): Promise<{ dir: string; ckpt: string; stats: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ql-progressive-'));
  const [out, nIn] = [192, 160];
  const r = rng(3);
  writeSafetensors(join(dir, 'model.safetensors'), [
    f32Tensor(
      NAME,
      [out, nIn],
      Float32Array.from({ length: out * nIn }, () => r() * 0.05),
    ),
  ]);
  const acc = new ActivationAccumulator(nIn);
  acc.addBatch(
    Float32Array.from({ length: 8 * nIn }, (_, i) => r() * (i % nIn < 4 ? 20 : 1)),
    8,
  );
  await writeStatsFile(await scratchOutput(join(dir, 'stats.safetensors')), new Map([[NAME, acc.finish()]]));
  return { dir, ckpt: join(dir, 'model.safetensors'), stats: join(dir, 'stats.safetensors') };
}

test('progressive analyzeLayer: partial results first (slider rank, top of both spectra), then the full one', async () => {
  const f = await fixture();
  try {
    const h = createHandlers();
    const seen: AnalysisProgress[] = [];
    const full = await h.analyzeLayer(
      { checkpoint: f.ckpt, layer: NAME, settings, calibration: f.stats, progressive: true, firstRank: 80 },
      { signal: new AbortController().signal, progress: (p) => seen.push(p) },
    );
    const partials = seen.flatMap((p) => (p.partial ? [p.partial] : []));
    assert.equal(partials.length, 2, 'the first ranks with the top of the spectra, then the full curves');
    assert.equal(partials[0]!.maxRank, 80);
    assert.deepEqual(partials[0]!.preview, { finalMaxRank: 120, spectra: true });
    assert.ok(partials[0]!.sigmaPlain.length >= 64 && partials[0]!.sigmaPlain.length < 160);
    assert.ok(partials[0]!.sigmaScaled.length >= 64 && partials[0]!.sigmaScaled.length < 160);
    assert.equal(partials[1]!.maxRank, 120);
    assert.equal(full.preview, undefined);
    assert.equal(full.sigmaPlain.length, 160);
    assert.equal(full.curves.weightErrSq.length, 121);
    // Without `progressive` nothing partial is sent.
    const quiet: AnalysisProgress[] = [];
    await h.analyzeLayer(
      { checkpoint: f.ckpt, layer: NAME, settings, calibration: f.stats },
      { signal: new AbortController().signal, progress: (p) => quiet.push(p) },
    );
    assert.ok(quiet.every((p) => !p.partial));
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('a progressive analysis cancelled after its first result stops with "cancelled"', async () => {
  const f = await fixture();
  try {
    const h = createHandlers();
    const controller = new AbortController();
    let partials = 0;
    await assert.rejects(
      h.analyzeLayer(
        { checkpoint: f.ckpt, layer: NAME, settings, calibration: f.stats, progressive: true },
        {
          signal: controller.signal,
          progress: (p) => {
            if (p.partial) {
              partials++;
              controller.abort();
            }
          },
        },
      ),
      /cancel/,
    );
    assert.equal(partials, 1, 'nothing more after the cancel');
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
