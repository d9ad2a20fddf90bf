import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MINIFLOATS,
  MINIFLOAT_NAMES,
  fakeQuantize,
  parseFormat,
  roundToMinifloat,
  withTile,
} from '../../../src/engine/quantizers';
import { normalMatrix, seededRandom } from './helpers';

const f32 = (values: number[]): Float32Array => new Float32Array(values);

/** Every finite non-negative value of a minifloat type, decoded from its codes. */
function grid(name: keyof typeof MINIFLOATS): number[] {
  const { exponentBits: eb, mantissaBits: mb, bias, maxNormal } = MINIFLOATS[name];
  const values: number[] = [];
  for (let code = 0; code < 2 ** (eb + mb); code++) {
    const e = code >> mb;
    const m = code & (2 ** mb - 1);
    const v = e === 0 ? m * 2 ** (1 - bias - mb) : (1 + m / 2 ** mb) * 2 ** (e - bias);
    if (v <= maxNormal) values.push(v);
  }
  return values;
}

test('E2M1 rounding: ties to even, saturation at 6, sign bit kept', () => {
  const e2m1 = MINIFLOATS.e2m1;
  const cases: [number, number][] = [
    [0.25, 0],
    [0.26, 0.5],
    [0.75, 1],
    [1.25, 1],
    [1.75, 2],
    [2.5, 2],
    [3.5, 4],
    [5, 4],
    [5.0001, 6],
    [7, 6],
    [1e9, 6],
    [-0.3, -0.5],
    [-2.6, -3],
  ];
  for (const [v, expected] of cases) assert.equal(roundToMinifloat(v, e2m1), expected, String(v));
  assert.ok(Object.is(roundToMinifloat(-0.1, e2m1), -0));
  assert.ok(Object.is(roundToMinifloat(-0, e2m1), -0));
  assert.ok(Object.is(roundToMinifloat(0, e2m1), 0));
});

test('E4M3 and E5M2 rounding: subnormals, ties, saturation', () => {
  const { e4m3, e5m2 } = MINIFLOATS;
  assert.equal(roundToMinifloat(464, e4m3), 448);
  assert.equal(roundToMinifloat(1000, e4m3), 448);
  assert.equal(roundToMinifloat(2 ** -9, e4m3), 2 ** -9);
  assert.equal(roundToMinifloat(2 ** -10, e4m3), 0);
  assert.equal(roundToMinifloat(3 * 2 ** -10, e4m3), 2 ** -8);
  assert.equal(roundToMinifloat(3.3, e4m3), 3.25);
  assert.equal(roundToMinifloat(61440, e5m2), 57344);
  assert.equal(roundToMinifloat(2 ** -17, e5m2), 0);
  assert.equal(roundToMinifloat(3 * 2 ** -17, e5m2), 2 ** -15);
});

test('every element type: results are grid values and nearest (ties to the even code)', () => {
  const random = seededRandom(1);
  for (const name of MINIFLOAT_NAMES) {
    const values = grid(name);
    const spec = MINIFLOATS[name];
    for (let k = 0; k < 4000; k++) {
      const v = Math.fround((random() * 2 - 1) * spec.maxNormal * 1.2);
      const q = roundToMinifloat(v, spec);
      const index = values.indexOf(Math.abs(q));
      assert.ok(index >= 0, `${name}: ${v} → ${q} is not on the grid`);
      const best = Math.min(...values.map((g) => Math.abs(Math.abs(v) - g)));
      assert.ok(Math.abs(Math.abs(v) - Math.abs(q)) === best, `${name}: ${v} → ${q} is not nearest`);
    }
    for (let i = 0; i + 1 < values.length; i++) {
      const mid = (values[i]! + values[i + 1]!) / 2;
      assert.equal(roundToMinifloat(mid, spec), i % 2 === 0 ? values[i] : values[i + 1], `${name} tie ${mid}`);
    }
  }
});

test('MXFP4: E8M0 scale 2^(floor(log2 amax) − 2), elements E2M1', () => {
  const format = withTile(parseFormat('mxfp4'), [1, 4]);
  // amax 6: scale 1. amax 7.9: still scale 1, so 7.9 saturates to 6 (the spec's known clipping).
  // amax 8: scale 2.
  const out = fakeQuantize(f32([6, 1, 0.3, -2.9, 7.9, 0.2, 0, -1, 8, 1, -2.5, 5]), 3, 4, format);
  assert.deepEqual([...out], [6, 1, 0.5, -3, 6, 0, 0, -1, 8, 1, -2, 4]);
});

test('MXFP: outputs are scale · element grid values', () => {
  const x = normalMatrix(16 * 64, 0.05, 2);
  for (const text of ['mxfp4', 'mxfp6', 'mxfp6:e3m2', 'mxfp8', 'mxfp8:e5m2']) {
    const format = parseFormat(text);
    if (format.kind !== 'mxfp') throw new Error(text);
    const values = new Set(grid(format.element));
    const out = fakeQuantize(x, 16, 64, format);
    for (let start = 0; start < x.length; start += 32) {
      let amax = 0;
      for (let i = start; i < start + 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
      const scale = 2 ** (Math.floor(Math.log2(amax)) - MINIFLOATS[format.element].maxExponent);
      for (let i = start; i < start + 32; i++) assert.ok(values.has(Math.abs(out[i]!) / scale), `${text}: ${out[i]}`);
    }
  }
});

test('NVFP4: FP8 block scale relative to the FP32 tensor scale', () => {
  // Tensor max 2688 → tensor scale 1; block [6 …]: block scale 1; block [3 …]: 0.5; block [2688 …]: 448.
  const x = f32([6, 1.2, -0.7, 5, 3, 1.3, -0.2, 2, 2688, 1000, -400, 100]);
  const out = fakeQuantize(x, 3, 4, withTile(parseFormat('nvfp4'), [1, 4]));
  assert.deepEqual([...out], [6, 1, -0.5, 4, 3, 1.5, -0.25, 2, 2688, 896, -448, 0]);
});

test('NVFP4: a block far below the tensor max underflows its E4M3 scale and becomes zero', () => {
  const x = f32([1, 0.5, 1e-7, -1e-7]);
  const out = fakeQuantize(x, 2, 2, withTile(parseFormat('nvfp4'), [1, 2]));
  assert.deepEqual([...out.slice(2)], [0, -0]);
});

test('FP8 per channel: row scale amax/448, E4M3 elements', () => {
  const out = fakeQuantize(f32([448, 1, -3.3, 0, 0, 0]), 2, 3, parseFormat('fp8'));
  assert.deepEqual([...out], [448, 1, -3.25, 0, 0, 0]);
});
