import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveRank, modelTotals, resultRow } from '../../../src/extension/services/modelResults';
import { lowRankCost, parseFormat } from '../../../src/engine/quantizers';
import type { CheckpointSummary, LinearLayer } from '../../../src/shared/checkpointSummary';
import { DEFAULT_SETTINGS } from '../../../src/shared/quantSettings';
import type { LayerAnalysis } from '../../../src/shared/protocol/layer';

function layer(name: string, shape: [number, number]): LinearLayer {
  return {
    name,
    shape,
    storedTransposed: false,
    block: 0,
    role: 'x',
    quantizedByDefault: true,
    dtype: 'F32',
    file: '/m',
  };
}

const a = layer('a.weight', [64, 128]);
const b = layer('b.weight', [32, 16]);
const summary: CheckpointSummary = {
  format: 'safetensors',
  path: '/m',
  files: [{ path: '/m', size: 0 }],
  metadata: {},
  architecture: null,
  family: null,
  warnings: [],
  tensors: [
    { name: 'a.weight', dtype: 'F32', shape: [64, 128], file: '/m', byteLength: 64 * 128 * 4, decodable: true },
    { name: 'b.weight', dtype: 'F32', shape: [32, 16], file: '/m', byteLength: 32 * 16 * 4, decodable: true },
    { name: 'norm', dtype: 'F32', shape: [128], file: '/m', byteLength: 512, decodable: true },
  ],
  linearLayers: [a, b],
  parameterCount: 64 * 128 + 32 * 16 + 128,
};

test('the rank a layer gets is capped by its shape, and RTN has none', () => {
  assert.equal(effectiveRank({ ...DEFAULT_SETTINGS, rank: 32 }, [64, 128]), 32);
  assert.equal(effectiveRank({ ...DEFAULT_SETTINGS, rank: 32 }, [32, 16]), 16);
  assert.equal(effectiveRank({ ...DEFAULT_SETTINGS, method: 'rtn' }, [64, 128]), 0);
});

test('model totals: quantized layers in the format with A·B, other tensors as stored', () => {
  const t = modelTotals(summary, [a, b], DEFAULT_SETTINGS, []);
  const cost = (l: LinearLayer, rank: number) =>
    lowRankCost({
      nIn: l.shape[1],
      nOut: l.shape[0],
      rank,
      weightFormat: parseFormat('mxint4'),
      factorFormat: { ...parseFormat('mxint8'), tile: [1, 16] } as ReturnType<typeof parseFormat>,
    });
  const quantizedBytes = cost(a, 32).totalBytes + cost(b, 16).totalBytes;
  assert.equal(t.quantizedLayers, 2);
  assert.equal(t.quantizedParameters, 64 * 128 + 32 * 16);
  assert.equal(t.quantizedBytes, quantizedBytes);
  assert.equal(t.originalBytes, (64 * 128 + 32 * 16) * 4 + 512);
  assert.equal(t.modelBytes, 512 + quantizedBytes);
  assert.ok(Math.abs(t.bitsPerWeight - (8 * quantizedBytes) / t.quantizedParameters) < 1e-12);
  assert.ok(t.factorOverhead > 0);
  assert.equal(t.analysedLayers, 0);
  assert.equal(t.meanWeightError, null);
});

test('a result row reads the curves at the rank and keeps non-finite values out', () => {
  const analysis: LayerAnalysis = {
    name: 'a.weight',
    shape: [64, 128],
    method: 'lqer',
    weightFormat: 'mxint4',
    factorFormat: 'mxint8',
    factorTiling: 'last-dim',
    maxRank: 2,
    sigmaPlain: new Float64Array(0),
    sigmaScaled: new Float64Array(0),
    scale: null,
    activation: { meanAbs: null, rms: null, tokens: null },
    norms: { weightSq: 100, errorSq: 4, outputSq: null },
    curves: {
      weightErrSq: Float64Array.of(4, 1, 0),
      outputErrSq: null,
      objectiveErrSq: Float64Array.of(4, 1, 0),
      objectiveIdealSq: Float64Array.of(4, 1, 0),
    },
    outputErrorKind: null,
    factorResidual: null,
    ridge: null,
    nonFinite: 0,
    timings: {},
  };
  const r1 = resultRow(analysis, 1);
  assert.equal(r1.weightErrorRtn, 0.2);
  assert.equal(r1.weightError, 0.1);
  assert.equal(r1.outputError, null);
  assert.equal(r1.recovered, 0.75);
  const r2 = resultRow(analysis, 5); // clamped to the curves' end: no error left
  assert.equal(r2.weightError, 0);
  assert.equal(r2.weightSqnrDb, null, 'an infinite SQNR travels as null');
});
