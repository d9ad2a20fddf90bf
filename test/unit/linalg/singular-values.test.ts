import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gram } from '../../../src/engine/linalg/gram';
import { singularValues, singularValuesFromGram } from '../../../src/engine/linalg/singular-values';
import { matrixF32, referenceSingularValues } from './fixtures';
import { assertSpectrumClose, gaussianMatrix, maxAbs, maxAbsDiff, multiply } from './helpers';

test('gram: both sides, column scaling and a caller buffer match a naive product', async () => {
  const m = gaussianMatrix(37, 300, 2);
  const c = Float64Array.from({ length: 300 }, (_, j) => 1 + (j % 5));
  const cols = await gram(m, { side: 'columns' });
  assert.equal(cols.matrix.rows, 300);
  assert.ok(maxAbsDiff(cols.matrix.data, multiply(m, m, true).data) < 1e-12);
  const auto = await gram(m);
  assert.equal(auto.side, 'rows');
  assert.ok(maxAbsDiff(auto.matrix.data, multiply(m, m, false, true).data) < 1e-11);
  const out = new Float64Array(37 * 37 + 5);
  const scaled = await gram(m, { side: 'rows', columnScale: c, out });
  assert.equal(scaled.matrix.data.buffer, out.buffer);
  const mc = { data: m.data.map((x, i) => x * c[i % 300]!), rows: 37, cols: 300 };
  assert.ok(maxAbsDiff(scaled.matrix.data, multiply(mc, mc, false, true).data) < 1e-10);
  // float32 input is widened exactly: the Gram equals the float64 product of the same values.
  const m32 = { data: Float32Array.from(m.data), rows: 37, cols: 300 };
  const g32 = await gram(m32, { side: 'columns' });
  const wide = { data: Float64Array.from(m32.data), rows: 37, cols: 300 };
  assert.ok(maxAbsDiff(g32.matrix.data, multiply(wide, wide, true).data) < 1e-12);
});

test('gram: a tall matrix on the columns side, transposed a chunk of rows at a time, sums to the whole product', async () => {
  // 4500 rows: three chunks (2048 + 2048 + 404) summed into 300 columns, two block rows of the Gram.
  const m = gaussianMatrix(4500, 300, 5);
  const chunkBytes = (bytes: number) => 2048 * 300 * bytes;
  const c = Float64Array.from({ length: 300 }, (_, j) => 0.5 + (j % 7));
  const mc = { data: m.data.map((x, i) => x * c[i % 300]!), rows: 4500, cols: 300 };
  const exact = multiply(mc, mc, true).data;
  const g64 = await gram(m, { side: 'columns', columnScale: c, chunkBytes: chunkBytes(8) });
  assert.ok(maxAbsDiff(g64.matrix.data, exact) < 1e-9 * maxAbs(exact));
  // float32: the product's own rounding only, and exactly symmetric storage.
  const m32 = { data: Float32Array.from(m.data), rows: 4500, cols: 300 };
  const wide = { data: Float64Array.from(m32.data, (x, i) => x * c[i % 300]!), rows: 4500, cols: 300 };
  const out = new Float32Array(300 * 300);
  const g32 = await gram(m32, {
    side: 'columns',
    columnScale: c,
    precision: 'float32',
    out,
    chunkBytes: chunkBytes(4),
  });
  const ref32 = multiply(wide, wide, true).data;
  assert.ok(maxAbsDiff(g32.matrix.data, ref32) < 1e-5 * maxAbs(ref32));
  for (let i = 0; i < 300; i++) for (let j = 0; j < i; j++) assert.equal(out[i * 300 + j], out[j * 300 + i]);
});

for (const name of ['noise_256x192', 'noise_120x200', 'decay_160x160']) {
  test(`singular values of ${name} match numpy (top 64 to 1e-4 relative, all to 1e-3·σ₁)`, async () => {
    const m = matrixF32(name);
    const ref = referenceSingularValues(name);
    const sv = await singularValues(m);
    const { topRel, allAbs } = assertSpectrumClose(sv, ref);
    // The Gram route in float64 does far better than the bounds on these well-scaled matrices.
    assert.ok(topRel < 1e-9, `top relative error ${topRel}`);
    assert.ok(allAbs < 1e-7, `all-values error ${allAbs}`);
  });
}

test('the fast-decaying spectrum keeps relative accuracy down to 1e-6·σ₁', async () => {
  const m = matrixF32('decay_160x160');
  const ref = referenceSingularValues('decay_160x160');
  const sv = await singularValues(m);
  for (let i = 0; i < ref.length; i++) {
    if (ref[i]! < 1e-6 * ref[0]!) break;
    assert.ok(Math.abs(sv[i]! - ref[i]!) <= 1e-4 * ref[i]!, `σ_${i}: ${sv[i]} vs ${ref[i]}`);
  }
});

test('either Gram side gives the same values; a wide matrix gives min(rows, cols) of them', async () => {
  const m = matrixF32('noise_120x200');
  const a = await singularValues(m, { side: 'columns' });
  const b = await singularValues(m, { side: 'rows' });
  assert.equal(a.length, 120);
  assert.equal(b.length, 120);
  assert.ok(maxAbsDiff(a, b) < 1e-6 * a[0]!);
});

test('the scaled spectrum from a reused columns Gram equals the spectrum of M·diag(s)', async () => {
  const m = matrixF32('noise_256x192');
  const s = Float64Array.from({ length: m.cols }, (_, j) => Math.exp(Math.sin(j)));
  const g = await gram(m, { side: 'columns' });
  const fromGram = await singularValuesFromGram(g, { scale: s });
  const plainFromGram = await singularValuesFromGram(g);
  const ms = { data: Float64Array.from(m.data, (x, i) => x * s[i % m.cols]!), rows: m.rows, cols: m.cols };
  const direct = await singularValues(ms);
  assertSpectrumClose(fromGram, direct, { topRelative: 1e-10, allRelativeToFirst: 1e-9 });
  assertSpectrumClose(plainFromGram, referenceSingularValues('noise_256x192'));
  await assert.rejects(() => singularValuesFromGram({ ...g, side: 'rows' }, { scale: s }), /columns of M/);
});

test('float64 input and degenerate shapes', async () => {
  const m = gaussianMatrix(50, 30, 9);
  const sv = await singularValues(m);
  assert.equal(sv.length, 30);
  const zero = await singularValues({ data: new Float32Array(12), rows: 3, cols: 4 });
  assert.deepEqual([...zero], [0, 0, 0]);
  const one = await singularValues({ data: Float32Array.of(-3), rows: 1, cols: 1 });
  assert.deepEqual([...one], [3]);
});
