/**
 * The activation fake-quantizer built from ONNX operators against the engine's bit-exact MXINT
 * (quantizers/mxint.ts, LQER's block_fp): same values on random data of many magnitudes, zeros,
 * values below the 1e-8 pass-through threshold and ragged last blocks, at opset 17 (ONNX Round)
 * and opset 9 (magic-number rounding), for feature-last and NCHW tensors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { buildModel, OnnxType } from '../../../src/engine/onnx/builder';
import { GraphBuilder } from '../../../src/engine/evaluation/graphBuilder';
import { mxintFakeQuant } from '../../../src/engine/evaluation/mxintGraph';
import { fakeQuantize, parseFormat } from '../../../src/engine/quantizers';
import { rng } from './smallGraphs';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

function testData(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r();
    if (kind < 0.03) x[i] = 0;
    else if (kind < 0.05)
      x[i] = (r() - 0.5) * 1e-8; // passes through unchanged
    else x[i] = (r() - 0.5) * 10 ** (6 * r() - 3);
  }
  // A block whose max is an exact power of two (the ceil exponent then clips it).
  x.set([0.5, -0.25, 0.125, 0.3], 0);
  return x;
}

async function runQuantizer(
  x: Float32Array,
  dims: number[],
  channels: number,
  layout: 'last' | 'nchw',
  bits: number,
  opset: number,
): Promise<Float32Array> {
  const b = new GraphBuilder(opset, 'q');
  const y = mxintFakeQuant(b, 'x', channels, layout, { bits, block: 16 });
  const bytes = buildModel(
    {
      name: 'mxint',
      nodes: [...b.nodes, { op: 'Identity', inputs: [y], outputs: ['y'] }],
      inputs: [{ name: 'x', elemType: OnnxType.FLOAT, dims }],
      outputs: [{ name: 'y', elemType: OnnxType.FLOAT }],
      initializers: b.initializers,
    },
    opset,
  );
  const s = await ort.InferenceSession.create(bytes);
  try {
    const r = await s.run({ x: new ort.Tensor('float32', x, dims) });
    return r.y!.data as Float32Array;
  } finally {
    await s.release();
  }
}

function assertSame(actual: Float32Array, expected: Float32Array, what: string): void {
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i]! + 0, expected[i]! + 0)) {
      mismatches++;
      if (first < 0) first = i;
    }
  }
  assert.equal(
    mismatches,
    0,
    `${what}: ${mismatches} mismatches, first at ${first}: ${actual[first]} vs ${expected[first]}`,
  );
}

for (const opset of [17, 9]) {
  for (const bits of [8, 6, 4]) {
    test(`MXINT${bits} in ONNX (opset ${opset}) equals fakeQuantize on rows of 120 features (ragged last block)`, async () => {
      const rows = 300;
      const channels = 120;
      const x = testData(rows * channels, bits * 100 + opset);
      const got = await runQuantizer(x, [3, 100, channels], channels, 'last', bits, opset);
      const want = fakeQuantize(x, rows, channels, parseFormat(`mxint${bits}`));
      assertSame(got, want, `mxint${bits}`);
    });
  }
}

test('MXINT8 in ONNX on an NCHW tensor quantizes blocks along the channels of each pixel', async () => {
  const [n, c, h, w] = [2, 40, 3, 7];
  const x = testData(n * c * h * w, 77);
  const got = await runQuantizer(x, [n, c, h, w], c, 'nchw', 8, 9);
  // Reference: pixels as rows of C features.
  const rows = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < h * w; p++)
      for (let k = 0; k < c; k++) rows[(b * h * w + p) * c + k] = x[(b * c + k) * h * w + p]!;
  const q = fakeQuantize(rows, n * h * w, c, parseFormat('mxint8'));
  const want = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < h * w; p++)
      for (let k = 0; k < c; k++) want[(b * c + k) * h * w + p] = q[(b * h * w + p) * c + k]!;
  assertSame(got, want, 'nchw');
});
