/** What comes back from a webview or from disk for the allocation, comparison and reassembly views: checked, never trusted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_ALLOCATION_FORMATS,
  parseOverviewState,
  sanitizeAllocationRequest,
  sanitizeAllocationGoal,
} from '../../../src/shared/protocol/overview';
import { availableObjectives, defaultGoal, recipeFor, usableGoal } from '../../../src/shared/allocation';
import {
  DEFAULT_COMPARISON_VIEW,
  comparisonLabels,
  parseComparisonPanelState,
  sanitizeComparisonView,
} from '../../../src/shared/protocol/comparison';
import { DEFAULT_REASSEMBLY_OPTIONS, sanitizeReassemblyOptions } from '../../../src/shared/protocol/layer';
import { DEFAULT_SETTINGS } from '../../../src/shared/quantSettings';
import type { AllocationCurves, AllocationLayer } from '../../../src/shared/protocol/overview';

function layer(name: string, errSq: number[], calibrated = true, sensitivity?: number): AllocationLayer {
  return {
    name,
    shape: [4, 4],
    weightSq: 100,
    outputSq: calibrated ? 100 : null,
    outputErrorKind: calibrated ? 'exact' : null,
    options: [
      {
        format: 'mxint4',
        bits: Float64Array.from(errSq, (_, k) => 72 + 64 * k),
        weightErrSq: Float64Array.from(errSq),
        outputErrSq: calibrated ? Float64Array.from(errSq) : null,
      },
    ],
    ...(sensitivity !== undefined ? { sensitivity } : {}),
  };
}

const calibrated = [layer('a', [10, 2, 1]), layer('b', [1, 0.9, 0.8])];

test('an allocation request keeps known formats once each, at most six, with a bounded rank', () => {
  assert.deepEqual(
    sanitizeAllocationRequest({ formats: ['MXINT4', 'mxint4:block=16', 'int4', 'bogus'], maxRank: 40.6 }),
    {
      formats: ['mxint4', 'int4:g128'],
      maxRank: 41,
      sensitivity: false,
    },
  );
  const many = sanitizeAllocationRequest({
    formats: ['mxint2', 'mxint3', 'mxint4', 'mxint6', 'mxint8', 'int4', 'int8', 'nvfp4'],
    maxRank: 1e9,
    sensitivity: true,
  })!;
  assert.equal(many.formats.length, MAX_ALLOCATION_FORMATS);
  assert.equal(many.maxRank, 512);
  assert.equal(many.sensitivity, true);
  assert.equal(sanitizeAllocationRequest({ formats: ['bogus'] }), null);
  assert.equal(sanitizeAllocationRequest({ formats: 'mxint4' }), null);
  assert.equal(sanitizeAllocationRequest(null), null);
  assert.equal(sanitizeAllocationRequest({ formats: ['mxint4'], maxRank: -3 })!.maxRank, 64);
});

test('an allocation view needs a positive budget; an unknown objective falls back to the weight error', () => {
  assert.deepEqual(
    sanitizeAllocationGoal({ budget: { bitsPerWeight: 4.5 }, unit: 'bits', objective: 'output-relative' }),
    {
      budget: { bitsPerWeight: 4.5 },
      unit: 'bits',
      objective: 'output-relative',
    },
  );
  assert.deepEqual(sanitizeAllocationGoal({ budget: { bytes: 1024 }, unit: 'mib', objective: 'nonsense' }), {
    budget: { bytes: 1024 },
    unit: 'mib',
    objective: 'weight-relative',
  });
  assert.equal(sanitizeAllocationGoal({ budget: { bitsPerWeight: 0 } }), null);
  assert.equal(sanitizeAllocationGoal({ budget: { bytes: -5 } }), null);
  assert.equal(sanitizeAllocationGoal({ budget: { bitsPerWeight: Infinity } }), null);
  assert.equal(sanitizeAllocationGoal('4.5'), null);
});

test('output objectives need calibration in every layer; the sensitivity one needs a measurement too', () => {
  assert.deepEqual(availableObjectives(calibrated), [
    'output-relative',
    'output-absolute',
    'weight-relative',
    'weight-absolute',
  ]);
  assert.deepEqual(availableObjectives([calibrated[0]!, layer('c', [1, 1, 1], false)]), [
    'weight-relative',
    'weight-absolute',
  ]);
  const measured = [layer('a', [10, 2, 1], true, 2), layer('b', [1, 0.9, 0.8], true, 0.5)];
  assert.ok(availableObjectives(measured).includes('output-sensitivity'));
  const view = { budget: { bitsPerWeight: 8 }, unit: 'bits' as const, objective: 'output-sensitivity' as const };
  assert.equal(usableGoal(view, measured).objective, 'output-sensitivity');
  assert.equal(usableGoal(view, calibrated).objective, 'output-relative', 'a stale objective falls back');
});

function curves(layers: AllocationLayer[]): AllocationCurves {
  return {
    request: { formats: ['mxint4'], maxRank: 2, sensitivity: false },
    settings: { ...DEFAULT_SETTINGS, method: 'l2qer' },
    calibration: null,
    layers,
    sensitivities: null,
    timeMs: 1,
  };
}

test('a fresh allocation starts at the budget of the uniform rank, so both start at the same bits', () => {
  const v = defaultGoal(curves(calibrated), 1);
  assert.deepEqual(v, { budget: { bitsPerWeight: 8.5 }, unit: 'bits', objective: 'output-relative' });
  // A rank beyond the curves is the largest computed.
  assert.equal((defaultGoal(curves(calibrated), 99).budget as { bitsPerWeight: number }).bitsPerWeight, 12.5);
});

test('the exported recipe is the allocation at the view, with the curves’ method and A/B format', () => {
  const { recipe, result } = recipeFor(curves(calibrated), defaultGoal(curves(calibrated), 1));
  assert.equal(recipe.kind, 'quant-lens-recipe');
  assert.equal(recipe.method, 'l2qer');
  assert.equal(recipe.factorFormat, DEFAULT_SETTINGS.factorFormat);
  assert.deepEqual(recipe.layers, { a: { format: 'mxint4', rank: 2 }, b: { format: 'mxint4', rank: 0 } });
  assert.ok(result.best.bitsPerWeight <= 8.5);
});

test('a saved overview state without a usable request is the empty state', () => {
  assert.deepEqual(parseOverviewState(undefined), { version: 1 });
  assert.deepEqual(parseOverviewState({ allocation: { request: { formats: [] } } }), { version: 1 });
  assert.deepEqual(parseOverviewState({ allocation: { request: { formats: ['mxint3'], maxRank: 8 }, view: 'x' } }), {
    version: 1,
    allocation: { request: { formats: ['mxint3'], maxRank: 8, sensitivity: false }, view: null },
  });
});

test('the comparison view: bad tolerance, sort or selection fall back to the defaults', () => {
  assert.deepEqual(sanitizeComparisonView(undefined), DEFAULT_COMPARISON_VIEW);
  assert.deepEqual(
    sanitizeComparisonView({
      tolerance: -1,
      sort: { column: 'drop table', descending: 'yes' },
      selected: 42,
      changedOnly: 'true',
    }),
    DEFAULT_COMPARISON_VIEW,
  );
  assert.deepEqual(
    sanitizeComparisonView({
      tolerance: 0,
      sort: { column: 'name', descending: false },
      selected: 'x',
      changedOnly: true,
    }),
    { tolerance: 0, sort: { column: 'name', descending: false }, selected: 'x', changedOnly: true },
  );
});

test('a saved comparison panel must name both checkpoints', () => {
  const view = { ...DEFAULT_COMPARISON_VIEW, tolerance: 0.07 };
  assert.deepEqual(parseComparisonPanelState({ version: 1, a: '/a', b: '/b', view }), {
    version: 1,
    a: '/a',
    b: '/b',
    view,
  });
  assert.equal(parseComparisonPanelState({ a: '/a' }), null);
  assert.equal(parseComparisonPanelState({ a: '/a', b: '' }), null);
  assert.equal(parseComparisonPanelState({ version: 2, a: '/a', b: '/b' }), null);
  assert.equal(parseComparisonPanelState('/a'), null);
});

test('the two checkpoints are named by file, or by folder and file when the file names are the same', () => {
  assert.deepEqual(comparisonLabels('/m/base.safetensors', '/m/tuned.gguf'), {
    a: 'base.safetensors',
    b: 'tuned.gguf',
  });
  assert.deepEqual(comparisonLabels('/m/llama/model.safetensors', '/m/llama-ft/model.safetensors'), {
    a: 'llama/model.safetensors',
    b: 'llama-ft/model.safetensors',
  });
  assert.deepEqual(comparisonLabels('C:\\m\\a\\model.onnx', 'C:\\m\\b\\model.onnx'), {
    a: 'a/model.onnx',
    b: 'b/model.onnx',
  });
});

test('reassembly options: bit widths from the list, a ratio in (0, 1], a whole rank up to 512', () => {
  assert.deepEqual(sanitizeReassemblyOptions({ weightBits: 3, actBits: 8, channelRatio: 0.5, rank: 15.6 }), {
    weightBits: 3,
    actBits: 8,
    channelRatio: 0.5,
    rank: 16,
  });
  assert.deepEqual(
    sanitizeReassemblyOptions({ weightBits: 5, actBits: '4', channelRatio: 1.5, rank: -1 }),
    DEFAULT_REASSEMBLY_OPTIONS,
  );
  assert.equal(sanitizeReassemblyOptions({ rank: 4096 }).rank, 512);
  assert.equal(sanitizeReassemblyOptions({ channelRatio: 0 }).channelRatio, DEFAULT_REASSEMBLY_OPTIONS.channelRatio);
  const fallback = { weightBits: 8, actBits: 6, channelRatio: 0.1, rank: 8 };
  assert.deepEqual(sanitizeReassemblyOptions(null, fallback), fallback);
});
