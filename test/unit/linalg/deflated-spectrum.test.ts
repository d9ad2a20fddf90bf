import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  deflatedSingularValues,
  findCliff,
  singularValues,
  topSingularTriplets,
  type Mat,
} from '../../../src/engine/linalg';
import { SPECTRUM_ROUTES, boundsMeetBars, topRatio } from '../../../src/engine/methods/analyzeLayer';
import { mulberry32 } from '../../../src/engine/random';

function gaussian(seed: number): () => number {
  const r = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-300))) * Math.cos(2 * Math.PI * r());
}

/**
 * A quantization-error-like float32 matrix (noise) and a column scale with `outliers` channels at
 * `big`× the rest, like an L²QER scale on activations with outlier channels.
 */
function outlierCase(rows: number, cols: number, outliers: number, big: number, seed: number) {
  const g = gaussian(seed);
  const data = Float32Array.from({ length: rows * cols }, () => 0.02 * g());
  const u = mulberry32(seed + 1);
  const every = Math.floor(cols / outliers);
  const scale = Float64Array.from({ length: cols }, (_, j) => 1 + u() + (j % every === 3 ? big : 0));
  return { m: { data, rows, cols } as Mat<Float32Array>, scale };
}

/** Checks that every value is within its own bound of the float64 reference. */
function assertBoundsHold(sigma: Float64Array, bound: Float64Array, ref: Float64Array, what: string): void {
  assert.equal(sigma.length, ref.length, what);
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(sigma[i]! - ref[i]!);
    assert.ok(err <= bound[i]!, `${what}: σ${i + 1} off by ${err}, bound ${bound[i]}`);
  }
}

test('findCliff: the deepest drop within reach, only where the rest is flat enough for float32', () => {
  const spectrum = (top: number, k: number, rest: number) =>
    Float64Array.from({ length: 200 }, (_, i) => (i < k ? top * (1 - i / 100) : rest * (1 - i / 1000)));
  assert.deepEqual(findCliff(spectrum(1, 12, 0.05), { maxRank: 64 })?.rank, 12);
  assert.ok(Math.abs(findCliff(spectrum(1, 12, 0.05), { maxRank: 64 })!.drop - (0.05 * 0.988) / 0.89) < 1e-12);
  assert.equal(findCliff(spectrum(1, 12, 0.05), { maxRank: 8 }), undefined, 'beyond maxRank');
  assert.equal(findCliff(spectrum(1, 12, 0.7), { maxRank: 64 }), undefined, 'a drop of 0.79 is no cliff');
  assert.equal(findCliff(spectrum(1, 0, 1), { maxRank: 64 }), undefined, 'flat');
  // Two cliffs: the deeper one wins unless the rest after it is too steep.
  const two = Float64Array.from({ length: 200 }, (_, i) => (i < 4 ? 1 : i < 20 ? 0.2 : 0.01));
  assert.equal(findCliff(two, { maxRank: 64 })?.rank, 20);
  assert.equal(findCliff(two, { maxRank: 64, remainderRatio: 0.5 })?.rank, 20);
  const steepRest = Float64Array.from({ length: 200 }, (_, i) => (i < 4 ? 1 : 0.2 * 0.9 ** i));
  assert.equal(findCliff(steepRest, { maxRank: 64, remainderRatio: 0.07 }), undefined);
  assert.equal(findCliff(new Float64Array(10), { maxRank: 64 }), undefined, 'zeros');
});

test('deflated spectrum: every value within its bound of the float64 route, the bounds meeting the bars on spectra too steep for float32 alone', async () => {
  // Tall (the Gram on the input side, with the scale) and wide (the output side, no scale but
  // outlier columns in the matrix itself).
  const tall = outlierCase(700, 560, 12, 80, 3);
  const wideBase = outlierCase(520, 700, 10, 0, 5);
  const wide = {
    m: { ...wideBase.m, data: Float32Array.from(wideBase.m.data, (x, i) => (i % 70 === 3 ? 60 * x : x)) },
  };
  for (const [what, m, scale] of [
    ['tall, scaled', tall.m, tall.scale],
    ['wide, outlier columns', wide.m, undefined],
  ] as const) {
    const ref = await singularValues(m, {
      precision: 'float64',
      reduction: 'float64',
      ...(scale ? { columnScale: scale } : {}),
    });
    // The premise: too steep for either float32 reduction's bound (they would hand it to float64).
    assert.ok(topRatio(ref) < SPECTRUM_ROUTES[1]!.minRatio, `${what}: σ₆₄/σ₁ = ${topRatio(ref)}`);
    const cliff = findCliff(ref, { maxRank: 64 });
    assert.ok(cliff && cliff.rank >= 8 && cliff.rank <= 14 && cliff.drop < 0.2, `${what}: ${JSON.stringify(cliff)}`);
    const d = await deflatedSingularValues(m, cliff.rank, {
      drop: cliff.drop,
      ...(scale ? { columnScale: scale } : {}),
    });
    assert.equal(d.rank, cliff.rank);
    assertBoundsHold(d.sigma, d.bound, ref, what);
    assert.ok(boundsMeetBars(d), `${what}: bounds ${d.bound[63]! / d.sigma[63]!} at σ₆₄`);
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(d.sigma[i]! - ref[i]!) <= 1e-5 * ref[i]!, `${what}: σ${i + 1}`);
  }
});

test('deflated spectrum: a split where there is no cliff is reported as such, not as accurate', async () => {
  const { m } = outlierCase(600, 520, 10, 0, 9);
  const d = await deflatedSingularValues(m, 5, { drop: 0.9 });
  const ref = await singularValues(m, { precision: 'float64', reduction: 'float64' });
  // Noise: σ₆/σ₅ ≈ 1, no gap between the split-off values and the rest.
  assert.ok(!boundsMeetBars(d));
  assertBoundsHold(d.sigma, d.bound, ref, 'no cliff');
  // Too steep even after the split (σ₁/σ₆₄ ≈ 500): the bounds say so.
  const steep = outlierCase(700, 560, 12, 2000, 3);
  const ds = await deflatedSingularValues(steep.m, 3, { drop: 0.5, columnScale: steep.scale });
  assert.ok(!boundsMeetBars(ds));
  await assert.rejects(deflatedSingularValues(m, 0), /rank 0 is outside/);
  await assert.rejects(deflatedSingularValues(m, 520), /rank 520 is outside/);
});

test("deflated spectrum: a subspace at hand (the factors' randomized SVD) replaces its own; one that misses the top vectors fails its bounds", async () => {
  const tall = outlierCase(700, 560, 12, 80, 3);
  const wide = outlierCase(520, 700, 10, 80, 5);
  for (const [what, c] of [
    ['tall, scaled (input side)', tall],
    ['wide, scaled (output side)', wide],
  ] as const) {
    const ref = await singularValues(c.m, { precision: 'float64', reduction: 'float64', columnScale: c.scale });
    const cliff = findCliff(ref, { maxRank: 64 })!;
    assert.ok(cliff.rank < 32, `${what}: cliff at ${cliff.rank}`);
    // Rank 32 as the factors would have it: more vectors than the split takes.
    const t = await topSingularTriplets(c.m, 32, { columnScale: c.scale });
    const d = await deflatedSingularValues(c.m, cliff.rank, {
      drop: cliff.drop,
      columnScale: c.scale,
      subspace: { u: t.u, vt: t.vt, frobenius: t.frobenius },
    });
    assertBoundsHold(d.sigma, d.bound, ref, what);
    assert.ok(boundsMeetBars(d), `${what}: bounds ${d.bound[63]! / d.sigma[63]!} at σ₆₄`);
    // Vectors unrelated to M: nothing is split off, and the bounds say the values are not certified.
    const g = gaussian(11);
    const noise = (rows: number, cols: number) => ({ data: Float32Array.from({ length: rows * cols }, g), rows, cols });
    const bad = await deflatedSingularValues(c.m, cliff.rank, {
      drop: cliff.drop,
      columnScale: c.scale,
      subspace: { u: noise(c.m.rows, 32), vt: noise(32, c.m.cols), frobenius: t.frobenius },
    });
    assert.ok(!boundsMeetBars(bad), `${what}: a wrong subspace passed`);
    assertBoundsHold(bad.sigma, bad.bound, ref, `${what}, wrong subspace`);
  }
});
