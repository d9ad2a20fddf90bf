/**
 * The in-graph statistics (statsGraph.ts + accumulateStats) against an independent computation:
 * the activations of a small graph recomputed in JS from its weights, reduced in float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { accumulateStats } from '../../../src/engine/calibration/calibrateOnnx';
import { openOnnxLinearModel } from '../../../src/engine/calibration/linearSites';
import { chainModel, convModel, gaussian, rng } from '../evaluation/smallGraphs';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

interface Expected {
  meanAbs: Float64Array;
  rms: Float64Array;
  gram: Float64Array;
  tokens: number;
}

/** The official semantics, computed directly from activation rows grouped by batch. */
function expectedStats(batches: Float64Array[], channels: number): Expected {
  const meanAbs = new Float64Array(channels);
  const sq = new Float64Array(channels);
  const gram = new Float64Array(channels * channels);
  let tokens = 0;
  for (const rows of batches) {
    const n = rows.length / channels;
    const batchAbs = new Float64Array(channels);
    for (let t = 0; t < n; t++) {
      for (let i = 0; i < channels; i++) {
        const v = rows[t * channels + i]!;
        batchAbs[i]! += Math.abs(v);
        sq[i]! += v * v;
        for (let j = 0; j < channels; j++) gram[i * channels + j]! += v * rows[t * channels + j]!;
      }
    }
    for (let i = 0; i < channels; i++) meanAbs[i] = Math.max(meanAbs[i]!, batchAbs[i]! / n);
    tokens += n;
  }
  return {
    meanAbs,
    rms: sq.map((v) => Math.sqrt(v / tokens)),
    gram: gram.map((v) => v / tokens),
    tokens,
  };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 2e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= rel * scale + 1e-12,
      `${what}[${i}]: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

test('MatMul, Gemm (transB, bias) inputs: act_mean_abs, act_rms, act_gram match a JS recomputation', async () => {
  const { path, w } = chainModel(5);
  const m = await openOnnxLinearModel(path);
  try {
    const r = rng(9);
    // Batches of different sizes: act_mean_abs is a max of per-batch means, so sizes matter.
    const shapes = [
      [2, 5],
      [1, 7],
      [3, 4],
    ];
    const xs = shapes.map(([n, t]) => gaussian(n! * t! * 8, r));
    const acts: Record<string, Float64Array[]> = { w1: [], w2: [], w3: [] };
    for (const x of xs) {
      const rows = x.length / 8;
      const h = new Float64Array(rows * 24);
      for (let t = 0; t < rows; t++)
        for (let o = 0; o < 24; o++) {
          let s = 0;
          for (let i = 0; i < 8; i++) s += x[t * 8 + i]! * w.w1[i * 24 + o]!;
          h[t * 24 + o] = Math.max(0, s);
        }
      const g = new Float64Array(rows * 12);
      for (let t = 0; t < rows; t++)
        for (let o = 0; o < 12; o++) {
          let s = w.b2[o]!;
          for (let i = 0; i < 24; i++) s += h[t * 24 + i]! * w.w2[o * 24 + i]!;
          g[t * 12 + o] = s;
        }
      acts.w1!.push(Float64Array.from(x));
      acts.w2!.push(h);
      acts.w3!.push(g);
    }
    const batches = xs.map((x, b) => ({
      feeds: { x: new ort.Tensor('float32', x, [shapes[b]![0]!, shapes[b]![1]!, 8]) },
      size: shapes[b]![0]!,
    }));
    const stats = await accumulateStats(m, m.sites, batches, { gram: true });
    assert.deepEqual([...stats.keys()].sort(), ['w1', 'w2', 'w3']);
    for (const [name, channels] of [
      ['w1', 8],
      ['w2', 24],
      ['w3', 12],
    ] as const) {
      const e = expectedStats(acts[name]!, channels);
      const s = stats.get(name)!;
      assert.equal(s.tokens, e.tokens, `${name} tokens`);
      assert.equal(s.batches, 3);
      assertClose(s.meanAbs, e.meanAbs, `${name}.act_mean_abs`);
      assertClose(s.rms, e.rms, `${name}.act_rms`);
      assertClose(s.gram!, e.gram, `${name}.act_gram`, 1e-4);
    }
  } finally {
    await m.close();
  }
});

test('1×1 Conv inputs (opset 9): every pixel is a token, channels are the features', async () => {
  const { path, c1 } = convModel(3);
  const m = await openOnnxLinearModel(path);
  try {
    const r = rng(4);
    const x = gaussian(2 * 4 * 3 * 5, r);
    const stats = await accumulateStats(
      m,
      m.sites,
      [{ feeds: { x: new ort.Tensor('float32', x, [2, 4, 3, 5]) }, size: 2 }],
      {
        gram: true,
      },
    );
    const pixels = 2 * 15;
    const rows1 = new Float64Array(pixels * 4);
    const rows2 = new Float64Array(pixels * 40);
    for (let n = 0; n < 2; n++)
      for (let p = 0; p < 15; p++) {
        const t = n * 15 + p;
        for (let c = 0; c < 4; c++) rows1[t * 4 + c] = x[(n * 4 + c) * 15 + p]!;
        for (let o = 0; o < 40; o++) {
          let s = 0;
          for (let c = 0; c < 4; c++) s += c1[o * 4 + c]! * rows1[t * 4 + c]!;
          rows2[t * 40 + o] = Math.max(0, s);
        }
      }
    for (const [name, rows, channels] of [
      ['c1', rows1, 4],
      ['c2', rows2, 40],
    ] as const) {
      const e = expectedStats([rows], channels);
      const s = stats.get(name)!;
      assert.equal(s.tokens, pixels);
      assertClose(s.meanAbs, e.meanAbs, `${name}.act_mean_abs`);
      assertClose(s.rms, e.rms, `${name}.act_rms`);
      assertClose(s.gram!, e.gram, `${name}.act_gram`, 1e-4);
    }
  } finally {
    await m.close();
  }
});
