/**
 * The banded error pass gives, bit for bit, E = W − fakeQuantize(W) and the norms of errorPass over
 * each band, summed in band order: for LQER's MXINT with one-row tiles (done in one fused pass)
 * and for every other format (quantize, then take the error), with zeros, tiny, huge, NaN and
 * infinite entries among the weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BandedErrorPass, errorPass, mergeNorms } from '../../../src/engine/methods/errorBands';
import { fakeQuantize } from '../../../src/engine/quantizers/fakeQuantize';
import { parseFormat } from '../../../src/engine/quantizers/formats';
import { rng } from './helpers';

function weights(out: number, nIn: number, seed: number): Float32Array {
  const r = rng(seed);
  const w = Float32Array.from({ length: out * nIn }, () => r() * 0.05);
  // A zero tile, a tile of values below the pass-through threshold, one huge enough to overflow
  // the shared exponent, and non-finite entries.
  w.fill(0, 0, 16);
  for (let i = 16; i < 32; i++) w[i] = (r() - 0.5) * 1e-9;
  w[nIn + 3] = 3e38;
  w[2 * nIn + 5] = NaN;
  w[3 * nIn + 7] = -Infinity;
  w[5 * nIn + 1] = 1e-10;
  return w;
}

test('the banded error pass equals errorPass over fakeQuantize, band by band, bit for bit', () => {
  const out = 150;
  const nIn = 96;
  for (const text of [
    'mxint4',
    'mxint3',
    'mxint8:block=32',
    'mxint6:exp=5',
    'mxint4:qera',
    'mxint3:block=16x1',
    'int4',
    'fp8',
  ]) {
    for (const weightColumns of [false, true]) {
      const format = parseFormat(text);
      const w = weights(out, nIn, 7);
      const band = 64;
      const parts = [];
      const expected = Float32Array.from(w);
      for (let r0 = 0; r0 < out; r0 += band) {
        const n = Math.min(band, out - r0);
        const part = expected.subarray(r0 * nIn, (r0 + n) * nIn);
        const q = fakeQuantize(part, n, nIn, format);
        parts.push(errorPass(part, q, part, n, nIn, weightColumns));
      }
      const norms = mergeNorms(parts, nIn);
      const data = Float32Array.from(w);
      const pass = new BandedErrorPass({ out, nIn, format, weightFormat: text, importance: null, weightColumns, band });
      const got = pass.finish(data);
      assert.deepEqual(data, expected, `${text}: E`);
      assert.deepEqual(got, norms, `${text}: norms`);
    }
  }
});
