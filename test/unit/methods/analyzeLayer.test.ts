import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeLayer, type LayerInput } from '../../../src/engine/methods/analyzeLayer';
import { rng } from './helpers';

/** A layer with outlier input channels and activations whose scale varies strongly by channel. */
function layer(out: number, nIn: number, seed = 1): LayerInput {
  const r = rng(seed);
  const data = Float32Array.from({ length: out * nIn }, () => r() * 0.2);
  const tokens = 64;
  const chanScale = Float64Array.from({ length: nIn }, (_, i) => (i % 7 === 0 ? 8 : 0.3 + Math.abs(r())));
  const X = Float64Array.from({ length: tokens * nIn }, (_, t) => r() * 2 * chanScale[t % nIn]!);
  const meanAbs = new Float32Array(nIn);
  const rms = new Float32Array(nIn);
  const gram = new Float64Array(nIn * nIn);
  for (let t = 0; t < tokens; t++)
    for (let i = 0; i < nIn; i++) {
      const xi = X[t * nIn + i]!;
      meanAbs[i]! += Math.abs(xi) / tokens;
      rms[i]! += (xi * xi) / tokens;
      for (let j = 0; j < nIn; j++) gram[i * nIn + j]! += (xi * X[t * nIn + j]!) / tokens;
    }
  for (let i = 0; i < nIn; i++) rms[i] = Math.sqrt(rms[i]!);
  return { name: 'blocks.0.fc1.weight', data, out, in: nIn, calibration: { meanAbs, rms, gram, tokens } };
}

const base = { weightFormat: 'mxint3', factorFormat: 'fp32', factorTiling: 'last-dim', maxRank: 12 } as const;

test('LQER with unquantized factors: the weight error at rank k is the tail energy of σ(E)', async () => {
  const a = await analyzeLayer(layer(40, 32), { ...base, method: 'lqer' });
  assert.equal(a.sigmaPlain.length, 32);
  assert.deepEqual(a.sigmaScaled, a.sigmaPlain);
  let tail = a.sigmaPlain.reduce((s, v) => s + v * v, 0);
  assert.ok(Math.abs(tail - a.norms.errorSq) < 1e-9 * tail, 'Σσ² = ‖E‖²');
  for (let k = 0; k <= 12; k++) {
    assert.ok(Math.abs(a.curves.weightErrSq[k]! - tail) < 1e-6 * a.norms.errorSq, `k=${k}`);
    tail -= a.sigmaPlain[k]! ** 2;
  }
  assert.equal(a.outputErrorKind, 'exact');
});

test('L²QER and QERA beat LQER on output error at low rank, and their objective curve is the scaled tail energy', async () => {
  const input = layer(48, 40, 3);
  const lqer = await analyzeLayer(input, { ...base, method: 'lqer' });
  const l2 = await analyzeLayer(input, { ...base, method: 'l2qer' });
  const exact = await analyzeLayer(input, { ...base, method: 'qera-exact' });
  for (let k = 0; k <= 12; k++) {
    assert.ok(
      Math.abs(l2.curves.objectiveErrSq[k]! - l2.curves.objectiveIdealSq[k]!) < 1e-6 * l2.curves.objectiveIdealSq[0]!,
    );
  }
  const k = 8;
  assert.ok(l2.curves.outputErrSq![k]! < lqer.curves.outputErrSq![k]!, 'L²QER output error below LQER');
  // QERA-exact is the optimum of the output error (up to its tiny ridge): nothing beats it.
  for (const other of [lqer, l2]) {
    for (let r = 1; r <= 12; r++)
      assert.ok(exact.curves.outputErrSq![r]! <= other.curves.outputErrSq![r]! * (1 + 1e-6), `rank ${r}`);
  }
  assert.equal(lqer.curves.outputErrSq![0], exact.curves.outputErrSq![0], 'same W_q, same rank-0 error');
});

test('quantizing the factors costs a little error, and RTN has no correction at all', async () => {
  const input = layer(32, 48, 5);
  const ideal = await analyzeLayer(input, { ...base, method: 'lqer' });
  const q = await analyzeLayer(input, { ...base, method: 'lqer', factorFormat: 'mxint4' });
  for (let k = 1; k <= 12; k++) assert.ok(q.curves.weightErrSq[k]! >= ideal.curves.weightErrSq[k]! * (1 - 1e-9));
  const rtn = await analyzeLayer(input, { ...base, method: 'rtn' });
  assert.equal(rtn.maxRank, 0);
  assert.equal(rtn.curves.weightErrSq.length, 1);
  assert.ok(Math.abs(rtn.curves.weightErrSq[0]! - rtn.norms.errorSq) < 1e-9 * rtn.norms.errorSq);
});

test('methods that need calibration refuse to run without it, naming what is missing', async () => {
  const input = { ...layer(16, 16), calibration: undefined };
  await assert.rejects(() => analyzeLayer(input, { ...base, method: 'l2qer' }), /needs act_mean_abs/);
  await assert.rejects(() => analyzeLayer(input, { ...base, method: 'qera-exact' }), /needs act_gram/);
});

test('the reconstructed weight at rank k has exactly the error the curves report', async () => {
  const { reconstructLayer } = await import('../../../src/engine/methods/reconstruct');
  const input = layer(24, 40, 9);
  const settings = {
    method: 'l2qer',
    weightFormat: 'mxint3',
    factorFormat: 'mxint8',
    factorTiling: 'last-dim',
  } as const;
  const a = await analyzeLayer(input, { ...settings, maxRank: 20 });
  for (const k of [0, 5, 16, 20]) {
    const r = await reconstructLayer(input, settings, k);
    let err = 0;
    for (let i = 0; i < r.weight.length; i++) err += (input.data[i]! - r.weight[i]!) ** 2;
    const rel = Math.abs(err - a.curves.weightErrSq[k]!) / a.curves.weightErrSq[k]!;
    assert.ok(rel < 1e-5, `k=${k}: ${err} vs ${a.curves.weightErrSq[k]} (rel ${rel})`);
  }
});

test('an analysis that may consume the weight forms the same error, band by band, in every format', async () => {
  const { prepareLayer } = await import('../../../src/engine/methods/analyzeLayer');
  for (const weightFormat of ['mxint4', 'int4', 'mxfp4', 'fp8', 'nvfp4', 'mxint3:block=16x1', 'int4:fitted']) {
    const input = layer(150, 48, 11);
    const settings = { ...base, method: 'l2qer', weightFormat, spectra: false } as const;
    const p = await prepareLayer(input, settings);
    const kept = await analyzeLayer(input, settings);
    const copy = { ...input, data: Float32Array.from(input.data) };
    const consumed = await analyzeLayer(copy, settings, { consumeWeight: true });
    const e = Float32Array.from(input.data, (w, i) => w - p.wq[i]!);
    assert.deepEqual(copy.data, e, `${weightFormat}: E took W's place`);
    for (const key of ['weightSq', 'errorSq', 'outputSq'] as const) {
      assert.ok(
        Math.abs(consumed.norms[key]! - kept.norms[key]!) <= 1e-12 * kept.norms[key]!,
        `${weightFormat} ${key}`,
      );
    }
    for (let k = 0; k <= consumed.maxRank; k++) {
      const d = Math.abs(consumed.curves.weightErrSq[k]! - kept.curves.weightErrSq[k]!);
      assert.ok(d <= 1e-9 * kept.curves.weightErrSq[0]!, `${weightFormat} k=${k}`);
    }
  }
});

test('an error pass fed rows as they are read gives the analysis bit for bit, however the rows arrive', async () => {
  const { startErrorPass } = await import('../../../src/engine/methods/analyzeLayer');
  const { landedRows } = await import('../../../src/engine/readers/tableCheckpoint');
  const r = rng(5);
  for (const [weightFormat, calibrated] of [
    ['mxint4', false],
    ['mxint3:block=16x1', true],
    ['int4', true],
    ['q4_k:imatrix', true],
  ] as const) {
    const full = layer(150, 256, 17);
    const { gram: _g, ...noGram } = full.calibration!;
    const input = { ...full, ...(calibrated ? { calibration: noGram } : { calibration: undefined }) };
    const method = calibrated ? 'l2qer' : 'lqer';
    const settings = { ...base, method, weightFormat, factorFormat: 'mxint8', spectra: false } as const;
    const reference = await analyzeLayer({ ...input, data: Float32Array.from(input.data) }, settings, {
      consumeWeight: true,
    });
    // The read: chunks of a few rows and a half, each group of three landing in a shuffled order
    // (a reader's lanes).
    const data = new Float32Array(input.data.length);
    const pass = startErrorPass(input, settings);
    assert.ok(pass, weightFormat);
    const seen: number[] = [];
    const visit = landedRows(input.in, (d, rows) => {
      seen.push(rows);
      pass.advance(d, rows);
    });
    const chunk = Math.floor(3.5 * input.in);
    const starts = Array.from({ length: Math.ceil(data.length / chunk) }, (_, i) => ({
      i,
      key: Math.floor(i / 3) + r(),
    }))
      .sort((x, y) => x.key - y.key)
      .map((x) => x.i * chunk);
    for (const at of starts) {
      const end = Math.min(data.length, at + chunk);
      data.set(input.data.subarray(at, end), at);
      visit(data.subarray(at, end), at, data);
    }
    assert.ok(seen.length > 1, `${weightFormat}: rows reported as they completed`);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
    );
    assert.equal(seen[seen.length - 1], input.out);
    const streamed = await analyzeLayer({ ...input, data }, settings, { consumeWeight: true, errorPass: pass });
    const { timings: _t1, ...a } = streamed;
    const { timings: _t2, ...b } = reference;
    assert.deepEqual(a, b, weightFormat);
  }
});

test('an error pass is started only where the analysis can consume the weight band by band, and must match it', async () => {
  const { startErrorPass } = await import('../../../src/engine/methods/analyzeLayer');
  const input = layer(64, 32, 3);
  const settings = { ...base, method: 'lqer', spectra: false } as const;
  // A per-tensor scale, fitted steps, or a dense output metric (which reads W itself) need W whole.
  assert.equal(startErrorPass(input, { ...settings, weightFormat: 'nvfp4' }), null);
  assert.equal(startErrorPass(input, { ...settings, weightFormat: 'int4:fitted' }), null);
  assert.equal(startErrorPass(input, settings), null, 'calibration with act_gram');
  const { gram: _g, ...noGram } = input.calibration!;
  const light = { ...input, calibration: noGram };
  // Settings the analysis refuses are refused before anything is read.
  assert.throws(() => startErrorPass(light, { ...settings, method: 'qera-exact' }), /needs act_gram/);
  const pass = startErrorPass(light, settings)!;
  await assert.rejects(
    () => analyzeLayer(light, { ...settings, weightFormat: 'mxint4' }, { consumeWeight: true, errorPass: pass }),
    /does not match/,
  );
  await assert.rejects(() => analyzeLayer(light, settings, { errorPass: pass }), /needs consumeWeight/);
});

test('a progressive analysis sends the first ranks and the top of both spectra first, then completes', async () => {
  const input = layer(200, 160, 13);
  const settings = { ...base, method: 'l2qer', factorFormat: 'mxint8', maxRank: 100 } as const;
  const partials: import('../../../src/engine/methods/analyzeLayer').LayerAnalysis[] = [];
  const full = await analyzeLayer(input, settings, { onPartial: (a) => partials.push(a), firstRank: 70 });
  const whole = await analyzeLayer(input, settings);
  assert.equal(partials.length, 2);
  const [first, curves] = partials as [(typeof partials)[0], (typeof partials)[0]];
  assert.deepEqual(first.preview, { finalMaxRank: 100, spectra: true });
  assert.equal(first.maxRank, 70, 'covers the slider rank asked for');
  assert.equal(curves.maxRank, 100);
  assert.equal(full.preview, undefined);
  assert.equal(full.sigmaPlain.length, 160);
  // The first curves are exact for their own factors: the same as the full run's where the
  // factors agree (the leading ranks), and the top of each spectrum matches the full spectrum.
  for (let k = 0; k <= 8; k++) {
    assert.ok(
      Math.abs(first.curves.weightErrSq[k]! - whole.curves.weightErrSq[k]!) < 1e-3 * whole.curves.weightErrSq[0]!,
    );
  }
  assert.equal(first.sigmaScaled.length, 80, 'top values up to the whole tile');
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(first.sigmaPlain[i]! - full.sigmaPlain[i]!) < 0.02 * full.sigmaPlain[i]!, `plain σ${i}`);
    assert.ok(Math.abs(first.sigmaScaled[i]! - full.sigmaScaled[i]!) < 0.02 * full.sigmaScaled[i]!, `scaled σ${i}`);
  }
  assert.deepEqual(full.curves.weightErrSq, whole.curves.weightErrSq, 'the final result is the one-shot result');
  assert.deepEqual(full.sigmaScaled, whole.sigmaScaled);
});
