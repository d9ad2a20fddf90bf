import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepFitTable, fitRows, formatChange } from '../../../webview/lib/stepFitModel';
import type { LayerAnalysis, StepFitComparison } from '../../../src/shared/protocol/layer';
import type { StepFitSummary } from '../../../src/engine/methods/stepFitTypes';

function analysis(
  fit: StepFitSummary | undefined,
  norms: { weightSq: number; outputSq: number | null },
): LayerAnalysis {
  return { stepFit: fit, norms: { ...norms, errorSq: 0 } } as unknown as LayerAnalysis;
}

const summary = (objective: StepFitSummary['objective']): StepFitSummary => ({
  objective,
  rtn: 4,
  lsqInit: 9,
  fitted: 1,
  start: 'rtn',
  sweeps: 3,
  groups: 10,
  groupsChanged: 7,
  medianStepRatio: 0.9,
});

test('before any correction: each grid relative to the objective’s reference, and against min/max', () => {
  const rows = fitRows(analysis(summary('output'), { weightSq: 100, outputSq: 400 }));
  assert.deepEqual(
    rows.map((r) => r.id),
    ['minmax', 'lsq', 'fitted'],
  );
  // √(J / tr(W R Wᵀ)): 4/400 → 10 %, 9/400 → 15 %, 1/400 → 5 %
  assert.deepEqual(
    rows.map((r) => r.relative),
    [0.1, 0.15, 0.05],
  );
  // √(J / J_minmax) − 1: the fitted steps halve the error, LSQ's start is 50 % worse
  assert.deepEqual(
    rows.map((r) => r.change),
    [null, 0.5, -0.5],
  );
});

test('without calibration the reference is ‖W‖²; without a fit there are no rows', () => {
  const rows = fitRows(analysis(summary('weight'), { weightSq: 100, outputSq: null }));
  assert.deepEqual(
    rows.map((r) => r.relative),
    [0.2, 0.3, 0.1],
  );
  assert.deepEqual(fitRows(analysis(undefined, { weightSq: 1, outputSq: 1 })), []);
  const noRef = fitRows(analysis(summary('output'), { weightSq: 100, outputSq: null }));
  assert.ok(noRef.every((r) => r.relative === null));
});

function comparison(outputError: (v: number) => number | null): StepFitComparison {
  const point = (w: number) => ({ weightError: w, outputError: outputError(w) });
  return {
    layer: 'l',
    format: 'int4:g128',
    fittedFormat: 'int4:g128:fitted',
    method: 'l2qer',
    rank: 16,
    objective: 'output',
    summary: summary('output'),
    rtn: { alone: point(0.1), withCorrection: point(0.05) },
    fitted: { alone: point(0.08), withCorrection: point(0.045) },
    lsqInitRelative: null,
    label: '',
  };
}

test('the comparison shows the output error when calibration gives one, each change against min/max', () => {
  const t = stepFitTable(comparison((w) => 2 * w));
  assert.equal(t.metric, 'output');
  assert.equal(t.rank, 16);
  const [minmax, fitted] = t.rows;
  assert.equal(minmax!.label, 'int4:g128 (min/max steps)');
  assert.deepEqual([minmax!.alone.value, minmax!.corrected.value], [0.2, 0.1]);
  assert.equal(minmax!.alone.change, null);
  assert.ok(Math.abs(fitted!.alone.change! - -0.2) < 1e-12);
  assert.ok(Math.abs(fitted!.corrected.change! - -0.1) < 1e-12);
  assert.equal(stepFitTable(comparison(() => null)).metric, 'weight');
  assert.equal(stepFitTable(comparison(() => null)).rows[1]!.alone.value, 0.08);
});

test('changes are written with a real minus sign, and nothing for no value', () => {
  assert.equal(formatChange(-0.123), '−12.3 %');
  assert.equal(formatChange(0.004), '+0.4 %');
  assert.equal(formatChange(null), '');
  assert.equal(formatChange(NaN), '');
});
