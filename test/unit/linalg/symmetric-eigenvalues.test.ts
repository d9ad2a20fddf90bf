import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bandToTridiagonal, emptyBand } from '../../../src/engine/linalg/band-to-tridiagonal';
import { wasmChaseAvailable } from '../../../src/engine/linalg/band-chase-wasm';
import { denseToBand } from '../../../src/engine/linalg/dense-to-band';
import { kernels } from '../../../src/engine/linalg/kernels';
import { symmetricEigenvalues } from '../../../src/engine/linalg/symmetric-eigenvalues';
import { tridiagonalEigenvalues } from '../../../src/engine/linalg/tridiagonal-eigenvalues';
import { Workspace } from '../../../src/engine/linalg/workspace';
import { StepClock } from '../../../src/engine/linalg/progress';
import { mulberry32 } from '../../../src/engine/random';
import { QuantLensError } from '../../../src/engine/errors';
import { bandColumns, matrixF64, referenceEigenvalues } from './fixtures';
import { jacobiEigenvalues, maxAbsDiff, symmetricRandom } from './helpers';

test('band → tridiagonal keeps the eigenvalues of the numpy band fixture', async () => {
  const src = bandColumns('band_150_b6');
  const { n, bandwidth } = src;
  const band = emptyBand(n, bandwidth);
  for (let j = 0; j < n; j++)
    for (let o = 0; o <= bandwidth; o++) band.data[j * band.ld + o] = src.data[j * (bandwidth + 1) + o]!;
  const t = await bandToTridiagonal(band);
  const ev = await tridiagonalEigenvalues(t.d, t.e);
  assert.ok(maxAbsDiff(ev, referenceEigenvalues('band_150_b6')) < 1e-12);
});

test('the two-thread chase gives bit-for-bit the sequential result', async () => {
  const n = 600;
  // Wide enough for the helper thread to be used (narrower bands are chased on one thread).
  const b = 13;
  const band = emptyBand(n, b);
  const rand = mulberry32(42);
  for (let j = 0; j < n; j++) for (let o = 0; o <= b && j + o < n; o++) band.data[j * band.ld + o] = rand() - 0.5;
  const copy = () => ({ ...band, data: Float64Array.from(band.data) });
  const one = await bandToTridiagonal(copy(), undefined, undefined, 1, 'js');
  const two = await bandToTridiagonal(copy(), undefined, undefined, 2, 'js');
  assert.deepEqual(two.d, one.d);
  assert.deepEqual(two.e, one.e);
  // Cancelled mid-way, the helper thread is released and can be used again.
  const ctrl = new AbortController();
  const clock = new StepClock(ctrl.signal);
  const big = emptyBand(3000, 16);
  for (let i = 0; i < big.data.length; i++) big.data[i] = i % 33 < 17 ? rand() - 0.5 : 0;
  setTimeout(() => ctrl.abort(), 20);
  await assert.rejects(bandToTridiagonal(big, clock, undefined, 2, 'js'), { code: 'cancelled' });
  const again = await bandToTridiagonal(copy(), undefined, undefined, 2, 'js');
  assert.deepEqual(again.d, one.d);
  // Two chases at once: the second runs on this thread alone instead of waiting on the helper.
  const both = await Promise.all([
    bandToTridiagonal(copy(), undefined, undefined, 2, 'js'),
    bandToTridiagonal(copy(), undefined, undefined, 2, 'js'),
  ]);
  for (const t of both) assert.deepEqual(t.e, one.e);
});

test("the WebAssembly chase gives bit for bit the JS kernel's tridiagonal, and is cancellable", async () => {
  assert.ok(wasmChaseAvailable(), 'the WebAssembly kernel loads on this Node');
  const rand = mulberry32(11);
  for (const [n, b] of [
    [3, 2],
    [40, 3],
    [300, 8],
    [517, 13],
    [1000, 16],
  ] as const) {
    const band = emptyBand(n, b);
    for (let j = 0; j < n; j++) {
      // Every seventh column zero below the diagonal: the reflectors with τ = 0 take their own path.
      const zero = j % 7 === 3;
      for (let o = 0; o <= b && j + o < n; o++) band.data[j * band.ld + o] = zero && o > 0 ? 0 : rand() - 0.5;
    }
    const copy = () => ({ ...band, data: Float64Array.from(band.data) });
    const js = await bandToTridiagonal(copy(), undefined, undefined, 1, 'js');
    const wasm = await bandToTridiagonal(copy());
    assert.deepEqual(wasm.d, js.d, `n ${n}, b ${b}: diagonal`);
    assert.deepEqual(wasm.e, js.e, `n ${n}, b ${b}: off-diagonal`);
  }
  const ctrl = new AbortController();
  const big = emptyBand(3000, 16);
  for (let i = 0; i < big.data.length; i++) big.data[i] = i % 33 < 17 ? rand() - 0.5 : 0;
  const copyBig = () => ({ ...big, data: Float64Array.from(big.data) });
  let sweeps = 0;
  const cancelled = bandToTridiagonal(copyBig(), new StepClock(ctrl.signal), (done) => {
    sweeps = done;
    ctrl.abort();
  });
  await assert.rejects(cancelled, { code: 'cancelled' });
  assert.ok(sweeps > 0 && sweeps < 3000, 'stopped part-way');
  // The instance is free again: the next chase runs in WebAssembly and matches the JS kernel.
  const after = await bandToTridiagonal(copyBig());
  const reference = await bandToTridiagonal(copyBig(), undefined, undefined, 1, 'js');
  assert.deepEqual(after.e, reference.e);
});

test('dense → band leaves a band (nothing outside it) with the same eigenvalues', async () => {
  const n = 70;
  const a = symmetricRandom(n, 3);
  const ref = jacobiEigenvalues(a);
  for (const [b, refresh] of [
    [4, 8],
    [5, 1000],
    [16, 16],
  ] as const) {
    const work = Float64Array.from(a.data);
    const band = await denseToBand(kernels(), work, n, new Workspace(), { bandwidth: b, refreshColumns: refresh });
    assert.equal(band.bandwidth, b);
    for (let j = 0; j < n; j++) {
      for (let o = b + 1; o < band.ld; o++) assert.equal(band.data[j * band.ld + o], 0, `entry (${j + o}, ${j})`);
    }
    const t = await bandToTridiagonal(band);
    const ev = await tridiagonalEigenvalues(t.d, t.e);
    assert.ok(maxAbsDiff(ev, ref) < 1e-12, `b = ${b}, refresh = ${refresh}: ${maxAbsDiff(ev, ref)}`);
  }
});

test('symmetricEigenvalues matches numpy on an indefinite matrix, through both paths', async () => {
  const a = matrixF64('symmetric_130');
  const ref = referenceEigenvalues('symmetric_130');
  const copy = Float64Array.from(a.data);
  // Default settings; a narrow band with frequent refreshes; the direct path on a leading block.
  const ev1 = await symmetricEigenvalues(a);
  const ev2 = await symmetricEigenvalues(a, { bandwidth: 3, refreshColumns: 12 });
  assert.deepEqual(a.data, copy, 'input left unchanged');
  assert.ok(maxAbsDiff(ev1, ref) < 1e-12, `default: ${maxAbsDiff(ev1, ref)}`);
  assert.ok(maxAbsDiff(ev2, ref) < 1e-12, `b = 3: ${maxAbsDiff(ev2, ref)}`);
  const m = 40;
  const lead = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) lead[i * m + j] = a.data[i * a.cols + j]!;
  const ev3 = await symmetricEigenvalues({ data: lead, rows: m, cols: m });
  assert.ok(maxAbsDiff(ev3, jacobiEigenvalues({ data: lead, rows: m, cols: m })) < 1e-12);
});

test('a float32 reduction (float32 or float64 input) stays within a few u₃₂·‖G‖ of numpy', async () => {
  const a = matrixF64('symmetric_130');
  const ref = referenceEigenvalues('symmetric_130');
  const norm = Math.max(Math.abs(ref[0]!), Math.abs(ref.at(-1)!));
  const a32 = Float32Array.from(a.data);
  // A narrow band with frequent refreshes runs both float32 graphs (panel and refresh) many times.
  for (const [what, ev] of [
    ['float64 input', await symmetricEigenvalues(a, { precision: 'float32', bandwidth: 4, refreshColumns: 16 })],
    ['float32 input', await symmetricEigenvalues({ data: a32, rows: a.rows, cols: a.cols }, { precision: 'float32' })],
    [
      'float32 input, overwritten',
      await symmetricEigenvalues(
        { data: Float32Array.from(a32), rows: a.rows, cols: a.cols },
        { precision: 'float32', overwrite: true, bandwidth: 8, refreshColumns: 24 },
      ),
    ],
  ] as const) {
    const d = maxAbsDiff(ev, ref);
    assert.ok(d < 16 * 2 ** -24 * norm, `${what}: ${d / norm}·‖G‖`);
    // It did run in float32: a float64 reduction is good to 1e-12 here.
    assert.ok(d > 1e-12 * norm, `${what}: ${d / norm}·‖G‖, a float64 result`);
  }
});

test('only the lower triangle is read; scale gives the eigenvalues of diag(s)·G·diag(s)', async () => {
  const n = 120;
  const a = symmetricRandom(n, 11);
  const s = Float64Array.from({ length: n }, (_, i) => 0.5 + (i % 7) / 3);
  const scaled = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) scaled[i * n + j] = s[i]! * a.data[i * n + j]! * s[j]!;
  const lowerOnly = Float64Array.from(a.data);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) lowerOnly[i * n + j] = Number.NaN;
  const ev = await symmetricEigenvalues({ data: lowerOnly, rows: n, cols: n }, { scale: s });
  const ref = await symmetricEigenvalues({ data: scaled, rows: n, cols: n }, { bandwidth: 7 });
  // Tolerances relative to ‖G‖: backward-stable methods are accurate to a few ε·n·‖G‖.
  const tol = 1e-13 * Math.max(Math.abs(ref[0]!), Math.abs(ref.at(-1)!));
  assert.ok(maxAbsDiff(ev, ref) < tol);
  assert.ok(maxAbsDiff(ev, jacobiEigenvalues({ data: scaled, rows: n, cols: n })) < tol);
});

test('overwrite uses the input as scratch and still gives the right values', async () => {
  const a = matrixF64('symmetric_130');
  const data = Float64Array.from(a.data);
  const ev = await symmetricEigenvalues({ data, rows: a.rows, cols: a.cols }, { overwrite: true });
  assert.ok(maxAbsDiff(ev, referenceEigenvalues('symmetric_130')) < 1e-12);
});

test('progress rises to 1; an aborted signal rejects with a cancelled error', async () => {
  const a = symmetricRandom(200, 5);
  const seen: number[] = [];
  await symmetricEigenvalues(a, { onProgress: (f) => seen.push(f), bandwidth: 4 });
  assert.ok(seen.length >= 1);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!);
  assert.equal(seen.at(-1), 1);
  const ctrl = new AbortController();
  ctrl.abort();
  await assert.rejects(() => symmetricEigenvalues(a, { signal: ctrl.signal }), {
    name: 'QuantLensError',
    code: 'cancelled',
  });
  // Aborting while it runs: the next yield point sees it.
  const ctrl2 = new AbortController();
  const p = symmetricEigenvalues(symmetricRandom(400, 6), { signal: ctrl2.signal, bandwidth: 2 });
  setTimeout(() => ctrl2.abort(), 5);
  await assert.rejects(p, { code: 'cancelled' });
});

test('rejects a non-square matrix or a scale of the wrong length', async () => {
  await assert.rejects(() => symmetricEigenvalues({ data: new Float64Array(6), rows: 2, cols: 3 }), /not square/);
  const a = symmetricRandom(4, 1);
  await assert.rejects(() => symmetricEigenvalues(a, { scale: new Float64Array(3) }), /scale has 3/);
});

test('a band offload that fails leaves the reduction to this thread; a cancelled one stays cancelled', async () => {
  const n = 160;
  const a = symmetricRandom(n, 8);
  const here = await symmetricEigenvalues(a);
  let offered = 0;
  const failing = await symmetricEigenvalues(a, {
    bandElsewhere: () => {
      offered++;
      return Promise.reject(new Error('the eigenvalue helper thread failed: no such file'));
    },
  });
  assert.equal(offered, 1);
  assert.deepEqual(failing, here, 'the band was still whole after the failed offload');
  await assert.rejects(
    symmetricEigenvalues(a, {
      bandElsewhere: () => Promise.reject(new QuantLensError('cancelled', 'cancelled')),
    }),
    { code: 'cancelled' },
  );
});
