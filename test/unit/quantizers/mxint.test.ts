import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeQuantize, parseFormat, withTile } from '../../../src/engine/quantizers';
import { meanSquaredError, normalMatrix, transpose } from './helpers';

const f32 = (values: number[]): Float32Array => new Float32Array(values);
const mxint = (text: string) => parseFormat(text);

test('worked example of docs/algorithms.md §2.3: MXINT4, one block of 16', () => {
  const x = f32([0.31, -0.12, 0.05, 0.88, -0.47, 0.02, 0.19, -0.73, 0.0, 0.64, -0.09, 0.27, -0.35, 0.11, 0.56, -0.21]);
  const expected = [0.25, -0.125, 0, 0.875, -0.5, 0, 0.25, -0.75, 0, 0.625, -0.125, 0.25, -0.375, 0.125, 0.5, -0.25];
  const lqer = fakeQuantize(x, 1, 16, mxint('mxint4'));
  assert.deepEqual([...lqer], expected);
  assert.equal(meanSquaredError(x, lqer).toFixed(6), '0.001209');
  // The QERA flavour agrees here (E_floor = −1, step 2^−1/2^2 = 0.125).
  assert.deepEqual([...fakeQuantize(x, 1, 16, mxint('mxint4:qera:block=16'))], expected);
});

test('is not idempotent: [0.13, 0.01] → [0.125, 0] → [0.109375, 0]', () => {
  const format = mxint('mxint4');
  const once = fakeQuantize(f32([0.13, 0.01]), 1, 2, format);
  assert.deepEqual([...once], [0.125, 0]);
  assert.deepEqual([...fakeQuantize(once, 1, 2, format)], [0.109375, 0]);
});

test('ceil exponent from float32 log2: a max 1 ulp above 2^−5 keeps E = −5 and is clipped to 7/256', () => {
  const justAbove = new Float32Array(1);
  new Uint32Array(justAbove.buffer)[0] = new Uint32Array(f32([2 ** -5]).buffer)[0]! + 1;
  const out = fakeQuantize(f32([justAbove[0]!, 0.01]), 1, 2, mxint('mxint4'));
  assert.equal(out[0], 7 / 256);
  // An exact power of two is clipped the same way: mx = 2^E gives codes up to 7 of 2^E/8.
  assert.equal(fakeQuantize(f32([0.5, 0.1]), 1, 2, mxint('mxint4'))[0], 0.4375);
});

test('the 1e-9 nudge breaks ties upward below 2^−5 (block max 0.03: 2^−9 → 2^−8, not 0)', () => {
  const out = fakeQuantize(f32([0.03, 2 ** -9, -(2 ** -9), 3 * 2 ** -9]), 1, 4, mxint('mxint4'));
  assert.deepEqual([...out], [7 / 256, 2 ** -8, -(2 ** -8), 2 * 2 ** -8]);
  // Above 2^−5 the nudge vanishes in float32 and ties go to even: 1.5 steps → 2, 2.5 → 2.
  const big = fakeQuantize(f32([0.875, 0.1875, 0.3125]), 1, 3, mxint('mxint4'));
  assert.deepEqual([...big], [0.875, 0.25, 0.25]);
});

test('|x| ≤ 1e-8 passes through unchanged, zeros come out +0, and negative code 0 is +0', () => {
  const x = f32([1, 5e-9, -1e-8, -0, 0, 1e-45, -0.01]);
  const out = fakeQuantize(x, 1, 7, mxint('mxint4'));
  assert.equal(out[1], x[1]);
  assert.equal(out[2], x[2]);
  assert.ok(Object.is(out[3], 0));
  assert.ok(Object.is(out[4], 0));
  assert.equal(out[5], x[5]);
  assert.ok(Object.is(out[6], 0));
  // A block of only tiny values is left alone.
  assert.deepEqual([...fakeQuantize(f32([3e-9, -7e-9]), 1, 2, mxint('mxint4'))], [...f32([3e-9, -7e-9])]);
});

test('a block max above 2^127 overflows 2^E to ∞ and the block becomes NaN, as in the reference', () => {
  const out = fakeQuantize(f32([3e38, 1, 1e-9, 1]), 1, 4, withTile(mxint('mxint4'), [1, 2]));
  assert.ok(out.slice(0, 2).every(Number.isNaN));
  assert.deepEqual([...out.slice(2)], [...f32([1e-9, 0.875])]);
});

test('a narrower shared exponent clamps: MXINT4 exp=4 saturates blocks above 2^8', () => {
  const out = fakeQuantize(f32([1000, -300, 1]), 1, 3, mxint('mxint4:exp=4'));
  assert.deepEqual([...out], [224, -224, 0]);
});

test('outputs lie on the block grid and are within half a step of unclipped inputs', () => {
  const rows = 24;
  const cols = 48;
  const x = normalMatrix(rows * cols, 0.05, 7);
  for (let bits = 2; bits <= 8; bits++) {
    const out = fakeQuantize(x, rows, cols, mxint(`mxint${bits}`));
    for (let start = 0; start < x.length; start += 16) {
      let mx = 0;
      for (let i = start; i < start + 16; i++) mx = Math.max(mx, Math.abs(x[i]!));
      const step = 2 ** Math.ceil(Math.fround(Math.log2(mx))) / 2 ** (bits - 1);
      const maxCode = 2 ** (bits - 1) - 1;
      for (let i = start; i < start + 16; i++) {
        const code = out[i]! / step;
        assert.ok(Number.isInteger(code) && Math.abs(code) <= maxCode, `grid: ${x[i]} → ${out[i]}`);
        if (Math.abs(x[i]!) <= (maxCode + 0.5) * step - 1e-9) {
          assert.ok(Math.abs(x[i]! - out[i]!) <= step / 2 + 1e-9, `error: ${x[i]} → ${out[i]}`);
        }
        assert.ok(Math.sign(out[i]!) === 0 || Math.sign(out[i]!) === Math.sign(x[i]!));
      }
    }
  }
});

test('tiles: [16,1] is [1,16] on the transpose, ragged tiles stand alone, -1 is the whole dimension', () => {
  const rows = 37;
  const cols = 53;
  const x = normalMatrix(rows * cols, 0.1, 11);
  for (const flavour of ['lqer', 'qera'] as const) {
    const base = flavour === 'lqer' ? mxint('mxint4') : mxint('mxint4:qera');
    const across = fakeQuantize(transpose(x, rows, cols), cols, rows, withTile(base, [1, 16]));
    const down = fakeQuantize(x, rows, cols, withTile(base, [16, 1]));
    assert.deepEqual(down, transpose(across, cols, rows), flavour);

    const whole = fakeQuantize(x, rows, cols, withTile(base, [1, -1]));
    assert.deepEqual(whole, fakeQuantize(x, rows, cols, withTile(base, [1, cols + 5])));
    assert.deepEqual(
      fakeQuantize(x, rows, cols, withTile(base, [-1, 16])),
      fakeQuantize(x, rows, cols, withTile(base, [rows, 16])),
    );
    // The ragged last tile of a row (columns 48..52) is quantized on its own.
    const row = x.slice(0, cols);
    const rowOut = fakeQuantize(row, 1, cols, withTile(base, [1, 16]));
    assert.deepEqual(rowOut.slice(48), fakeQuantize(row.slice(48), 1, 5, withTile(base, [1, 16])));
  }
});

test('writes in place when out is the input', () => {
  const x = normalMatrix(40 * 32, 0.02, 3);
  for (const text of ['mxint4', 'mxint4:block=16x1', 'mxint4:qera', 'mxint3:block=4x8']) {
    const expected = fakeQuantize(x, 40, 32, mxint(text));
    const copy = x.slice();
    assert.equal(fakeQuantize(copy, 40, 32, mxint(text), { out: copy }), copy);
    assert.deepEqual(copy, expected, text);
  }
});

test('QERA flavour: floor exponent (exact power-of-two max kept), flush of float32 subnormals, -0 → +0', () => {
  const format = mxint('mxint4:qera');
  // max 0.5: E_floor = −1, step 2^−1/4; the max itself is representable (LQER clips it to 0.4375).
  assert.deepEqual([...fakeQuantize(f32([0.5, 0.3]), 1, 2, format)], [0.5, 0.25]);
  const out = fakeQuantize(f32([1e-40, -1e-40, -0, 1]), 1, 4, format);
  assert.ok(Object.is(out[0], 0));
  assert.ok(Object.is(out[1], -0));
  assert.ok(Object.is(out[2], 0));
  assert.equal(out[3], 1);
});
