/**
 * The quantized-graph rewrite: with full rank and float factors the correction restores W exactly
 * (up to SVD round-off), so the rewritten graph — folded or split into the low-rank branch —
 * reproduces the float model's outputs; RTN's folded and split graphs agree with each other and
 * with a JS evaluation of the quantized weights; activation quantization changes the outputs only a little.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { openOnnxLinearModel, type OnnxLinearModel } from '../../../src/engine/calibration/linearSites';
import { openEditedSession } from '../../../src/engine/evaluation/session';
import { quantizedGraphEdits } from '../../../src/engine/evaluation/quantizedGraph';
import { activationSpec, quantizeModelAtRanks } from '../../../src/engine/evaluation/sweep';
import type { GraphEdits } from '../../../src/engine/evaluation/graphEdit';
import type { MethodName } from '../../../src/engine/methods/methods';
import { FULL_RANK } from '../../../src/engine/evaluation/sweepTable';
import { chainModel, convModel, gaussian, rng } from './smallGraphs';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

async function outputs(m: OnnxLinearModel, edits: GraphEdits, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await openEditedSession(m.model, edits);
  try {
    const r = await s.session.run({ x: new ort.Tensor('float32', x, dims) }, ['y']);
    return r.y!.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

async function quantizedEdits(
  m: OnnxLinearModel,
  method: MethodName,
  factorFormat: string,
  rank: number,
  options: { split?: boolean; act?: string },
): Promise<GraphEdits> {
  const q = await quantizeModelAtRanks(
    m,
    m.sites,
    null,
    {
      method,
      weightFormat: 'mxint4',
      factorFormat,
      factorTiling: 'last-dim',
    },
    [rank],
  );
  return quantizedGraphEdits(
    q.map((l) => ({ site: l.site, layer: l.layers[0]! })),
    m.opset,
    { split: !!options.split, activation: activationSpec(options.act) },
  );
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

for (const [label, make, dims] of [
  ['MatMul + Gemm(transB, bias) + MatMul, opset 17', () => chainModel(11).path, [2, 6, 8]],
  ['1×1 Conv pair, opset 9', () => convModel(12).path, [2, 4, 3, 5]],
] as const) {
  test(`${label}: rank = full with float factors reproduces the float outputs (folded and split)`, async () => {
    const m = await openOnnxLinearModel(make());
    try {
      const x = gaussian(
        dims.reduce((a, b) => a * b, 1),
        rng(3),
      );
      const float = await outputs(m, {}, x, [...dims]);
      const rtn = await outputs(m, await quantizedEdits(m, 'rtn', 'fp32', 0, {}), x, [...dims]);
      const scale = maxAbs(float);
      // MXINT4 alone moves the outputs visibly; the full-rank correction brings them back.
      assert.ok(maxAbsDiff(rtn, float) > 1e-3 * scale, 'RTN differs from float');
      for (const split of [false, true]) {
        const full = await outputs(m, await quantizedEdits(m, 'lqer', 'fp32', FULL_RANK, { split }), x, [...dims]);
        assert.ok(
          maxAbsDiff(full, float) < 2e-5 * scale,
          `split=${split}: ${maxAbsDiff(full, float)} vs scale ${scale}`,
        );
      }
      const rtnSplit = await outputs(m, await quantizedEdits(m, 'rtn', 'fp32', 0, { split: true }), x, [...dims]);
      assert.equal(maxAbsDiff(rtnSplit, rtn), 0, 'RTN split = folded');
    } finally {
      await m.close();
    }
  });

  test(`${label}: rank-2 LQER split and folded agree; W4A8 stays close to W4`, async () => {
    const m = await openOnnxLinearModel(make());
    try {
      const x = gaussian(
        dims.reduce((a, b) => a * b, 1),
        rng(8),
      );
      const folded = await outputs(m, await quantizedEdits(m, 'lqer', 'mxint8', 2, {}), x, [...dims]);
      const split = await outputs(m, await quantizedEdits(m, 'lqer', 'mxint8', 2, { split: true }), x, [...dims]);
      const scale = maxAbs(folded);
      assert.ok(maxAbsDiff(split, folded) < 1e-5 * scale, `split vs folded ${maxAbsDiff(split, folded)}`);
      const w4a8 = await outputs(m, await quantizedEdits(m, 'lqer', 'mxint8', 2, { act: 'mxint8' }), x, [...dims]);
      const d = maxAbsDiff(w4a8, folded);
      assert.ok(d > 0 && d < 0.05 * scale, `W4A8 vs W4: ${d} (scale ${scale})`);
    } finally {
      await m.close();
    }
  });
}
