import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRIC_KEYS, metricValues } from '../../../webview/layer/metrics';
import type { LayerAnalysis } from '../../../src/shared/protocol/layer';

function analysis(over: Partial<LayerAnalysis> = {}): LayerAnalysis {
  return {
    name: 'w',
    shape: [64, 128],
    method: 'l2qer',
    weightFormat: 'mxint4',
    factorFormat: 'mxint8',
    factorTiling: 'last-dim',
    maxRank: 2,
    sigmaPlain: Float64Array.of(2, 1),
    sigmaScaled: Float64Array.of(2, 1),
    scale: null,
    activation: { meanAbs: null, rms: null, tokens: null },
    norms: { weightSq: 100, errorSq: 4, outputSq: 400 },
    curves: {
      weightErrSq: Float64Array.of(4, 1, 0.25),
      outputErrSq: Float64Array.of(16, 4, 1),
      objectiveErrSq: Float64Array.of(4, 1, 0.25),
      objectiveIdealSq: Float64Array.of(4, 1, 0),
    },
    outputErrorKind: 'diagonal-estimate',
    factorResidual: null,
    ridge: null,
    nonFinite: 0,
    timings: {},
    ...over,
  };
}

test('every metric has a value at a rank, read from the curves', () => {
  const v = metricValues(analysis(), 1);
  assert.deepEqual(Object.keys(v), [...METRIC_KEYS]);
  assert.equal(v.rank, '1');
  assert.equal(v.weightError, '10.00 % (RTN 20.00 %)');
  assert.equal(v.outputError, '10.00 % (estimate)');
  assert.equal(v.weightSqnr, '20.0 dB');
  assert.equal(v.recovered, '75.0 % (ideal 75.0 %)');
  assert.match(v.bits, /^\d+\.\d{3}$/);
});

test('ranks beyond the curves are clamped; without calibration the output error says so', () => {
  const v = metricValues(
    analysis({
      curves: { ...analysis().curves, outputErrSq: null },
      norms: { weightSq: 100, errorSq: 4, outputSq: null },
    }),
    99,
  );
  assert.equal(v.rank, '2');
  assert.equal(v.outputError, 'needs calibration');
  assert.equal(v.outputSqnr, '—');
});

test('RTN has no correction to speak of', () => {
  const rtn = analysis({
    method: 'rtn',
    maxRank: 0,
    curves: {
      weightErrSq: Float64Array.of(4),
      outputErrSq: null,
      objectiveErrSq: Float64Array.of(4),
      objectiveIdealSq: Float64Array.of(4),
    },
  });
  const v = metricValues(rtn, 10);
  assert.equal(v.rank, '0 (RTN: no correction)');
  assert.equal(v.recovered, '—');
});
