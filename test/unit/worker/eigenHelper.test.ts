import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bandEigenvalues, eigenvaluesInPlace, gram, type Mat } from '../../../src/engine/linalg';
import { bandFromDense } from '../../../src/engine/linalg/band-to-tridiagonal';
import { analyzeLayer, type LayerInput } from '../../../src/engine/methods/analyzeLayer';
import { mulberry32 } from '../../../src/engine/random';
import { EigenHelper } from '../../../src/worker/eigenHelperClient';

function noise(rows: number, cols: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: rows * cols }, () => r() - 0.5);
}

async function gram32(m: Mat<Float32Array>): Promise<Float32Array> {
  const n = Math.min(m.rows, m.cols);
  return (await gram(m, { precision: 'float32', out: new Float32Array(n * n) })).matrix.data as Float32Array;
}

test('eigenvalue helper: the same eigenvalues as this thread, the caller’s matrix untouched, jobs in order', async () => {
  const helper = new EigenHelper();
  try {
    const n = 600;
    const a = await gram32({ data: noise(700, n, 1), rows: 700, cols: n });
    const b = await gram32({ data: noise(650, n, 2), rows: 650, cols: n });
    const copyA = Float32Array.from(a);
    // Two jobs at once: the second waits for the first on the helper and reuses nothing of it.
    const [ea, eb] = await Promise.all([helper.eigenvalues(a, n), helper.eigenvalues(b, n)]);
    assert.deepEqual(a, copyA, 'the matrix was copied, not used as scratch');
    for (const [m, e] of [
      [a, ea],
      [b, eb],
    ] as const) {
      const here = await eigenvaluesInPlace(Float32Array.from(m), n, { chaseThreads: 1 });
      assert.equal(e.length, n);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(e[i]! - here[i]!) <= 1e-5 * here[0]!, `λ${i + 1}`);
    }
    // A third job of the same size runs in the buffer that came back.
    const again = await helper.eigenvalues(a, n);
    assert.deepEqual(again, ea);
  } finally {
    await helper.dispose();
  }
});

test('eigenvalue helper: a band’s eigenvalues are the ones this thread gets, the caller’s band untouched', async () => {
  const helper = new EigenHelper();
  try {
    const n = 500;
    const g = await gram32({ data: noise(520, n, 5), rows: 520, cols: n });
    const band = bandFromDense(g, n, 8);
    const copy = Float64Array.from(band.data);
    const there = await helper.bandEigenvalues(band);
    assert.deepEqual(band.data, copy, 'the band was copied, not chased in place');
    const here = await bandEigenvalues({ ...band, data: Float64Array.from(band.data) }, { threads: 1 });
    assert.deepEqual(there, here, 'the same chase and QL, bit for bit');
    // A dense job after it reuses the buffer that came back.
    const e = await helper.eigenvalues(g, n);
    assert.equal(e.length, n);
  } finally {
    await helper.dispose();
  }
});

test('eigenvalue helper: a cancelled job rejects at once and the helper serves the next one', async () => {
  const helper = new EigenHelper();
  try {
    const n = 1200;
    const a = await gram32({ data: noise(1300, n, 3), rows: 1300, cols: n });
    const controller = new AbortController();
    const job = helper.eigenvalues(a, n, controller.signal);
    setTimeout(() => controller.abort(), 20);
    const t0 = performance.now();
    await assert.rejects(job, (e: Error & { code?: string }) => e.code === 'cancelled');
    assert.ok(performance.now() - t0 < 500, 'rejected promptly');
    const small = await gram32({ data: noise(300, 200, 4), rows: 300, cols: 200 });
    const e = await helper.eigenvalues(small, 200);
    const here = await eigenvaluesInPlace(Float32Array.from(small), 200);
    assert.ok(Math.abs(e[0]! - here[0]!) <= 1e-5 * here[0]!);
    await assert.rejects(helper.eigenvalues(small, 200, AbortSignal.abort()), /cancelled/);
  } finally {
    await helper.dispose();
  }
});

test('a layer analysed with the helper thread gets the spectra it gets alone; a helper that cannot start changes nothing', async () => {
  const out = 700;
  const nIn = 560;
  const r = mulberry32(11);
  const input = (): LayerInput => ({
    name: 'blocks.0.fc1.weight',
    data: Float32Array.from({ length: out * nIn }, (_, i) => 0.02 * Math.sin(i * 0.37 + r())),
    out,
    in: nIn,
    calibration: {
      meanAbs: Float32Array.from({ length: nIn }, (_, i) => 1 + (i % 7) / 7),
      rms: Float32Array.from({ length: nIn }, (_, i) => 1.3 + (i % 7) / 7),
      tokens: 64,
    },
  });
  const settings = {
    method: 'l2qer',
    weightFormat: 'mxint4',
    factorFormat: 'mxint8',
    factorTiling: 'last-dim',
    maxRank: 16,
  } as const;
  const base = input();
  const alone = await analyzeLayer({ ...base, data: Float32Array.from(base.data) }, settings);
  const helper = new EigenHelper();
  const broken = new EigenHelper({ path: '/nonexistent/eigen-helper.js' });
  try {
    let offloaded = 0;
    const counting = (m: Float32Array, n: number, signal?: AbortSignal) => {
      offloaded++;
      return helper.eigenvalues(m, n, signal);
    };
    for (const [what, offload] of [
      ['helper', counting],
      ['broken helper', broken.eigenvalues],
    ] as const) {
      for (const progressive of [false, true]) {
        const routes: string[] = [];
        const a = await analyzeLayer({ ...base, data: Float32Array.from(base.data) }, settings, {
          offload,
          onSpectrumRoute: (which, route) => routes.push(`${which}: ${route}`),
          ...(progressive ? { onPartial: () => undefined } : {}),
        });
        // With the helper, E's spectrum is the one that finishes second.
        assert.deepEqual(routes.sort(), ['plain: float32/float32', 'scaled: float32/float32'], what);
        for (const [ours, theirs, which] of [
          [a.sigmaPlain, alone.sigmaPlain, 'plain'],
          [a.sigmaScaled, alone.sigmaScaled, 'scaled'],
        ] as const) {
          assert.equal(ours.length, theirs.length);
          for (let i = 0; i < ours.length; i++) {
            assert.ok(Math.abs(ours[i]! - theirs[i]!) <= 1e-5 * theirs[0]!, `${what}, ${which}: σ${i + 1}`);
          }
        }
        assert.deepEqual(a.curves.weightErrSq, alone.curves.weightErrSq, `${what}: curves`);
      }
    }
    assert.equal(offloaded, 2, 'E’s spectrum went to the helper in both modes');
  } finally {
    await helper.dispose();
    await broken.dispose();
  }
});
