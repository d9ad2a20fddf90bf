import { test } from 'node:test';
import assert from 'node:assert/strict';
import { singularValues, mat } from '../../../src/engine/linalg';
import {
  SPECTRUM_ROUTES,
  analyzeLayer,
  firstRoute,
  topRatio,
  type LayerInput,
} from '../../../src/engine/methods/analyzeLayer';
import { l2qerScale } from '../../../src/engine/methods/scales';
import { fakeQuantize, parseFormat } from '../../../src/engine/quantizers';
import { gaussian, rng } from './helpers';

/** The accuracy bars of the spectra: top 64 within 1e-4 relative, all within 1e-3·σ₁. */
function assertBars(ours: Float64Array, ref: Float64Array, what: string): void {
  assert.equal(ours.length, ref.length, what);
  for (let i = 0; i < Math.min(64, ref.length); i++) {
    assert.ok(Math.abs(ours[i]! - ref[i]!) <= 1e-4 * ref[i]!, `${what}: σ${i + 1} ${ours[i]} vs ${ref[i]}`);
  }
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs(ours[i]! - ref[i]!) <= 1e-3 * ref[0]!, `${what}: σ${i + 1} ${ours[i]} vs ${ref[i]}`);
  }
}

test('routes: the bounds follow from the bars, fastest first; the first route skips what a steep spectrum would redo', () => {
  assert.deepEqual(
    SPECTRUM_ROUTES.map((r) => [r.gram, r.reduction]),
    [
      ['float32', 'float32'],
      ['float32', 'float64'],
      ['float64', 'float64'],
    ],
  );
  // κ = 16 (float32 Gram and reduction): all σ within √(16·2⁻²⁴)·σ₁ < 1e-3·σ₁, and at the bound
  // σ₆₄ is good to 1e-4 relative.
  const [r0, r1, r2] = SPECTRUM_ROUTES as [
    (typeof SPECTRUM_ROUTES)[0],
    (typeof SPECTRUM_ROUTES)[0],
    (typeof SPECTRUM_ROUTES)[0],
  ];
  assert.ok(Math.sqrt(16 * 2 ** -24) < 1e-3);
  assert.ok(Math.abs(((16 * 2 ** -24) / 2) * r0.minRatio ** -2 - 1e-4) < 1e-12);
  assert.ok(r0.minRatio > r1.minRatio && r1.minRatio > r2.minRatio && r2.minRatio === 0);

  const spectrum = (top: number, rest: number) =>
    Float64Array.from({ length: 100 }, (_, i) => (i === 0 ? top : rest * (1 - i / 1000)));
  assert.equal(topRatio(new Float64Array(0)), 1);
  assert.equal(topRatio(new Float64Array(10)), 1, 'a zero spectrum');
  assert.ok(Math.abs(topRatio(spectrum(1, 0.5)) - 0.5 * (1 - 63 / 1000)) < 1e-15, 'σ₆₄/σ₁');
  assert.equal(firstRoute(300, spectrum(1, 0.9)), 2, 'small orders go straight to float64');
  assert.equal(firstRoute(1024), 0, 'no hint: the fastest route first');
  assert.equal(firstRoute(1024, new Float64Array(32).fill(1)), 0, 'too few Ritz values to judge');
  assert.equal(firstRoute(1024, spectrum(1, 0.9)), 0);
  assert.equal(firstRoute(1024, spectrum(1, (r0.minRatio + r1.minRatio) / 2)), 1);
  assert.equal(firstRoute(1024, spectrum(1, r1.minRatio / 2)), 2);
});

/**
 * A 600×520 layer (order ≥ 512: the float32 routes apply) whose L²QER-scaled error has a few
 * dominant values (outlier channels at `big`× the mean |x|): its plain spectrum is noise-like, its
 * scaled one steep.
 */
function steepLayer(big = 300): LayerInput {
  const out = 600;
  const nIn = 520;
  const g = gaussian(rng(7));
  const data = Float32Array.from({ length: out * nIn }, () => 0.02 * g());
  const u = rng(8);
  const meanAbs = Float32Array.from({ length: nIn }, (_, i) => 1 + u() + (i % 50 === 3 ? big : 0));
  const rms = Float32Array.from(meanAbs, (v) => 1.25 * v);
  return { name: 'blocks.0.fc1.weight', data, out, in: nIn, calibration: { meanAbs, rms, tokens: 100 } };
}

/** The L²QER settings both steep-layer tests analyse with. */
const L2QER = {
  method: 'l2qer',
  weightFormat: 'mxint4',
  factorFormat: 'mxint8',
  factorTiling: 'last-dim',
  maxRank: 32,
} as const;

/** E = W − MXINT4(W) of a layer, as the analysis forms it. */
function errorOf(input: LayerInput) {
  const wq = fakeQuantize(input.data, input.out, input.in, parseFormat('mxint4'));
  return mat(
    Float32Array.from(input.data, (w, i) => w - wq[i]!),
    input.out,
    input.in,
  );
}

test('both spectra of a layer meet the bars against the float64 route, whichever route each took', async () => {
  const input = steepLayer();
  const settings = L2QER;
  const routes: string[] = [];
  const a = await analyzeLayer({ ...input, data: Float32Array.from(input.data) }, settings, {
    onSpectrumRoute: (which, route) => routes.push(`${which}: ${route}`),
  });
  // So steep (σ₁/σ₆₄ in the hundreds) that even the deflated route's bounds miss the bars.
  assert.deepEqual(routes, ['plain: float32/float32', 'scaled: float64/float64']);
  assert.deepEqual(a.spectrumRoutes, { plain: 'float32/float32', scaled: 'float64/float64' });
  const e = errorOf(input);
  const scale = l2qerScale(input.calibration!.meanAbs!);
  const plain = await singularValues(e, { precision: 'float64', reduction: 'float64' });
  const scaled = await singularValues(e, { precision: 'float64', reduction: 'float64', columnScale: scale });
  // The test's premise: one spectrum for the fastest route, one beyond both float32 reductions' bound.
  assert.ok(topRatio(plain) > SPECTRUM_ROUTES[0]!.minRatio, `plain ratio ${topRatio(plain)}`);
  assert.ok(topRatio(scaled) < SPECTRUM_ROUTES[1]!.minRatio, `scaled ratio ${topRatio(scaled)}`);
  // ... and the fastest route would miss the bars on the steep one, so a missing fallback fails here.
  const fastest = await singularValues(e, { precision: 'float32', reduction: 'float32', columnScale: scale });
  assert.throws(() => assertBars(fastest, scaled, 'σ(E·S), float32 Gram and reduction'), /reduction: σ\d+ /);
  assertBars(a.sigmaPlain, plain, 'σ(E)');
  assertBars(a.sigmaScaled, scaled, 'σ(E·S)');
  // Progressive analysis reaches the same spectra.
  const b = await analyzeLayer({ ...input, data: Float32Array.from(input.data) }, settings, {
    onPartial: () => undefined,
  });
  assertBars(b.sigmaPlain, plain, 'σ(E), progressive');
  assertBars(b.sigmaScaled, scaled, 'σ(E·S), progressive');
  // At rank 8 the randomized SVD has fewer than 64 Ritz values: no hint, so the fastest route runs
  // first and its own result sends the steep spectrum on to the next routes.
  const c = await analyzeLayer({ ...input, data: Float32Array.from(input.data) }, { ...settings, maxRank: 8 });
  assertBars(c.sigmaPlain, plain, 'σ(E), rank 8');
  assertBars(c.sigmaScaled, scaled, 'σ(E·S), rank 8');
});

test('a spectrum of E retried after a reduction ran in its Gram still meets the bars', async () => {
  // 40 input columns k× the rest: their quantization errors dominate σ(E). LQER keeps no Gram for a
  // second spectrum, so the fastest route reduces in the Gram itself; at rank 8 there is no Ritz
  // hint, and a retried route must form its Gram again. At 22× σ₆₄/σ₁ lies between the two float32
  // routes' bounds (the float32 Gram with a float64 reduction is kept), at 1500× below both.
  const out = 600;
  const nIn = 520;
  for (const [big, route] of [
    [0.45, 1],
    [30, 2],
  ] as const) {
    const g = gaussian(rng(11));
    const data = Float32Array.from({ length: out * nIn }, (_, i) => (i % nIn < 40 ? big : 0.02) * g());
    const wq = fakeQuantize(data, out, nIn, parseFormat('mxint4'));
    const e = mat(
      Float32Array.from(data, (w, i) => w - wq[i]!),
      out,
      nIn,
    );
    const ref = await singularValues(e, { precision: 'float64', reduction: 'float64' });
    const ratio = topRatio(ref);
    assert.ok(ratio < SPECTRUM_ROUTES[0]!.minRatio && ratio >= SPECTRUM_ROUTES[route]!.minRatio, `ratio ${ratio}`);
    const a = await analyzeLayer(
      { name: 'blocks.0.fc1.weight', data: Float32Array.from(data), out, in: nIn },
      { method: 'lqer', weightFormat: 'mxint4', factorFormat: 'mxint8', factorTiling: 'last-dim', maxRank: 8 },
    );
    assertBars(a.sigmaPlain, ref, `σ(E), columns ×${big}`);
  }
});

test('a scaled spectrum with a cliff after its outlier values is computed deflated and meets the bars, with or without a hint', async () => {
  // Outlier channels at 40× the mean |x|: σ₆₄/σ₁ is below both float32 reductions' bounds, but
  // the steepness is a cliff after the outlier values, which the deflated route splits off.
  const input = steepLayer(40);
  const settings = L2QER;
  const e = errorOf(input);
  const scaled = await singularValues(e, {
    precision: 'float64',
    reduction: 'float64',
    columnScale: l2qerScale(input.calibration!.meanAbs!),
  });
  assert.ok(topRatio(scaled) < SPECTRUM_ROUTES[1]!.minRatio, `scaled ratio ${topRatio(scaled)}`);
  // Rank 32 hands the Ritz values over as a hint; at rank 8 there are too few, and the failed
  // float32 route's own result shows the cliff.
  for (const maxRank of [32, 8]) {
    const routes: string[] = [];
    const a = await analyzeLayer(
      { ...input, data: Float32Array.from(input.data) },
      { ...settings, maxRank },
      {
        onSpectrumRoute: (which, route) => routes.push(`${which}: ${route}`),
      },
    );
    assert.deepEqual(routes, ['plain: float32/float32', 'scaled: deflated'], `rank ${maxRank}`);
    assert.deepEqual(a.spectrumRoutes, { plain: 'float32/float32', scaled: 'deflated' }, 'reported with the result');
    assertBars(a.sigmaScaled, scaled, `σ(E·S), rank ${maxRank}`);
  }
});
