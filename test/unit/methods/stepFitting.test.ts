import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeLayer } from '../../../src/engine/methods/analyzeLayer';
import { fitStepSizes, stepFitMetric } from '../../../src/engine/methods/stepFitting';
import { fakeQuantize, formatToString, parseFormat, type IntFormat } from '../../../src/engine/quantizers';
import { activations, outputErrorSq, statistics, weights } from './helpers';

const intFormat = (s: string) => parseFormat(s) as IntFormat;

test('the format string carries the fitted option and round-trips', () => {
  const f = intFormat('int4:g32:fitted');
  assert.equal(f.fitted, true);
  assert.equal(formatToString(f), 'int4:g32:fitted');
  assert.equal(formatToString(parseFormat('int3:channel:sym:fitted')), 'int3:channel:sym:fitted');
  assert.equal(intFormat('int4:g32').fitted, undefined);
});

for (const fmt of ['int4:g32', 'int3:g16:sym', 'int2:channel']) {
  test(`fitted steps (${fmt}) never do worse than RTN or the LSQ init, on the exact output error`, async () => {
    const out = 24;
    const nIn = 64;
    const tokens = 256;
    const w = weights(out, nIn, 11);
    const x = activations(tokens, nIn, 12);
    const { gram } = statistics(x, tokens, nIn);
    const f = intFormat(`${fmt}:fitted`);
    const fit = await fitStepSizes(w, out, nIn, f, { ...stepFitMetric({ gram }, nIn) });
    const s = fit.summary;
    assert.equal(s.objective, 'output');
    const rtn = outputErrorSq(w, fakeQuantize(w, out, nIn, { ...f, fitted: false }), out, nIn, gram);
    assert.ok(Math.abs(s.rtn - rtn) <= 1e-9 * rtn, `RTN objective ${s.rtn} vs direct ${rtn}`);
    const direct = outputErrorSq(w, fit.wq, out, nIn, gram);
    assert.ok(Math.abs(s.fitted - direct) <= 1e-9 * rtn, 'reported J is the exact J of the returned weight');
    assert.ok(s.fitted <= s.rtn && s.fitted <= s.lsqInit, `fit ${s.fitted}, RTN ${s.rtn}, LSQ ${s.lsqInit}`);
    assert.ok(s.fitted < 0.97 * s.rtn, `the fit should help on a layer with outlier channels (${s.fitted / s.rtn})`);
    assert.ok(s.groupsChanged > 0);
  });
}

test('every fitted group lies on its own INT grid (step, zero point, n-bit codes)', async () => {
  const out = 8;
  const nIn = 48;
  const w = weights(out, nIn, 3);
  const f = intFormat('int3:g16:fitted');
  const fit = await fitStepSizes(w, out, nIn, f, { metric: { kind: 'identity' }, objective: 'weight' });
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < 3; b++) {
      const s = fit.steps[o * 3 + b]!;
      const z = fit.zeroPoints![o * 3 + b]!;
      for (let j = 0; j < 16; j++) {
        const q = fit.wq[o * nIn + b * 16 + j]! / s + z;
        assert.ok(Math.abs(q - Math.round(q)) < 1e-4, `code ${q} is not an integer`);
        assert.ok(Math.round(q) >= 0 && Math.round(q) <= 7, `code ${q} outside 3 bits`);
      }
    }
  }
});

test('analyzeLayer with a fitted format: L²QER runs on top, and the k = 0 output error is the fitted one', async () => {
  const out = 32;
  const nIn = 64;
  const tokens = 256;
  const w = weights(out, nIn, 21);
  const x = activations(tokens, nIn, 22);
  const calibration = { ...statistics(x, tokens, nIn), tokens };
  const settings = { method: 'l2qer', factorFormat: 'mxint8', factorTiling: 'last-dim', maxRank: 8 } as const;
  const input = { name: 'fc.weight', data: w, out, in: nIn, calibration };
  const plain = await analyzeLayer(input, { ...settings, weightFormat: 'int3:g32' });
  const fitted = await analyzeLayer(input, { ...settings, weightFormat: 'int3:g32:fitted' });
  assert.equal(fitted.weightFormat, 'int3:g32:fitted');
  assert.ok(fitted.stepFit);
  assert.equal(plain.stepFit, undefined);
  const o0 = fitted.curves.outputErrSq![0]!;
  assert.ok(Math.abs(o0 - fitted.stepFit.fitted) <= 1e-6 * o0);
  assert.ok(o0 <= plain.curves.outputErrSq![0]!);
  assert.ok(fitted.curves.outputErrSq![8]! < o0, 'L²QER on top still removes error');
});
