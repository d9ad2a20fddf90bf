import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  axisLabel,
  budgetFieldValue,
  budgetInBoth,
  budgetOf,
  budgetRange,
  cliAllocateLine,
  allocationVsUniform,
  rankSeries,
  runAllocation,
  summaryErrors,
  tradeoffCurve,
} from '../../../webview/lib/allocationModel';
import { MIB } from '../../../src/shared/allocation';
import { DEFAULT_SETTINGS } from '../../../src/shared/quantSettings';
import {
  sanitizeAllocationGoal,
  type AllocationCurves,
  type AllocationLayer,
  type AllocationGoal,
} from '../../../src/shared/protocol/overview';

/**
 * Two 4×4 layers, one format, ranks 0…4: W_q costs 72 bits, each rank 64 more. Layer A gains a lot
 * from its first two ranks, layer B little from any: at the budget of a uniform rank 1, the best
 * allocation is A at rank 2 and B at rank 0.
 */
function layer(name: string, errSq: number[]): AllocationLayer {
  return {
    name,
    shape: [4, 4],
    weightSq: 100,
    outputSq: 100,
    outputErrorKind: 'exact',
    options: [
      {
        format: 'mxint4',
        bits: Float64Array.from(errSq, (_, k) => 72 + 64 * k),
        weightErrSq: Float64Array.from(errSq),
        outputErrSq: Float64Array.from(errSq),
      },
    ],
  };
}

const layers = [
  layer('model.layers.0.self_attn.q_proj.weight', [10, 2, 1, 0.5, 0.25]),
  layer('model.layers.0.mlp.up_proj.weight', [1, 0.9, 0.8, 0.7, 0.6]),
];
const atUniformRank1: AllocationGoal = { budget: { bitsPerWeight: 8.5 }, unit: 'bits', objective: 'output-relative' };

function curves(): AllocationCurves {
  return {
    request: { formats: ['mxint4'], maxRank: 4, sensitivity: false },
    settings: { ...DEFAULT_SETTINGS, method: 'l2qer' },
    calibration: '/data/stats.safetensors',
    layers,
    sensitivities: null,
    timeMs: 1,
  };
}

test('the budget range runs from every layer at rank 0 to every layer at the largest rank', () => {
  const r = budgetRange(layers);
  assert.equal(r.weights, 32);
  assert.equal(r.minBitsPerWeight, (2 * 72) / 32);
  assert.equal(r.maxBitsPerWeight, (2 * (72 + 4 * 64)) / 32);
});

test('a budget typed in MiB or bits per weight, shown in both units', () => {
  assert.deepEqual(budgetOf(1.5, 'mib'), { bytes: 1.5 * MIB });
  assert.deepEqual(budgetOf(4.25, 'bits'), { bitsPerWeight: 4.25 });
  assert.equal(budgetOf(0, 'bits'), null);
  assert.equal(budgetOf(NaN, 'mib'), null);
  const both = budgetInBoth(layers, { bytes: 68 });
  assert.equal(both.bitsPerWeight, 17);
  assert.equal(both.mib, 68 / MIB);
  assert.equal(budgetFieldValue(layers, { budget: { bytes: 68 }, unit: 'bits', objective: 'weight-relative' }), 17);
  assert.equal(
    budgetFieldValue(layers, { budget: { bitsPerWeight: 17 }, unit: 'mib', objective: 'weight-relative' }),
    68 / MIB,
  );
});

test('at the uniform budget the allocation moves the ranks to the layer that gains, and beats uniform', () => {
  const outcome = runAllocation(layers, atUniformRank1, true);
  assert.ok(outcome.ok);
  const r = outcome.result;
  const series = rankSeries(layers, r);
  assert.deepEqual(series.allocated, [2, 0]);
  assert.deepEqual(series.uniform, [1, 1]);
  assert.deepEqual(series.labels, ['0.self_attn.q_proj', '0.mlp.up_proj']);
  assert.deepEqual(series.formatCounts, [{ format: 'mxint4', label: series.formatCounts[0]!.label, layers: 2 }]);
  const s = allocationVsUniform(layers, r);
  assert.ok(s.allocated.bitsPerWeight <= 8.5);
  assert.equal(s.uniform!.bitsPerWeight, 8.5);
  // Σ relative output error²: (1 + 1)/100 against (2 + 0.9)/100
  assert.ok(Math.abs(s.allocated.outputRelSum! - 0.02) < 1e-12);
  assert.ok(Math.abs(s.uniform!.outputRelSum! - 0.029) < 1e-12);
  assert.ok(s.ratio! < 1);
  assert.ok(s.greedyGap >= 0 && s.greedyGap < 1e-9, `the greedy is optimal here: gap ${s.greedyGap}`);
});

test('summary errors: without calibration there is no output sum', () => {
  const uncalibrated = layers.map((l) => ({
    ...l,
    outputSq: null,
    outputErrorKind: null,
    options: l.options.map((o) => ({ ...o, outputErrSq: null })),
  }));
  const r = runAllocation(uncalibrated, { ...atUniformRank1, objective: 'weight-relative' }, false);
  assert.ok(r.ok);
  const e = summaryErrors(uncalibrated, r.result.best);
  assert.equal(e.outputRelSum, null);
  assert.ok(Math.abs(e.weightRelSum - 0.02) < 1e-12);
});

test('a budget below the cheapest allocation is reported, not thrown', () => {
  const r = runAllocation(layers, { ...atUniformRank1, budget: { bitsPerWeight: 3 } }, true);
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.message, /below the cheapest allocation/);
});

test('the trade-off curve: at every uniform rank’s budget the allocation is no worse', () => {
  const t = tradeoffCurve(curves(), atUniformRank1);
  assert.equal(t.format, 'mxint4');
  assert.deepEqual(
    t.uniform.map((p) => p.uniformRank),
    [0, 1, 2, 3, 4],
  );
  for (const p of t.uniform) assert.ok(p.allocated <= p.uniform + 1e-12, `rank ${p.uniformRank}`);
});

test('the CLI line reproduces the allocation, quoting paths that need it', () => {
  const line = cliAllocateLine(
    { checkpoint: '/models/my model.onnx', calibration: '/data/stats.safetensors', evaluable: true },
    curves(),
    atUniformRank1,
  );
  assert.equal(
    line,
    'quant-lens allocate "/models/my model.onnx" --budget-bits 8.5 --formats mxint4 --max-rank 4 --method l2qer --ab-format mxint8 --calib /data/stats.safetensors --objective output-relative --eval-data <evaluation data> --out recipe.json',
  );
  const bytes = cliAllocateLine({ checkpoint: '/m.safetensors', calibration: null, evaluable: false }, curves(), {
    budget: { bytes: 68.4 },
    unit: 'mib',
    objective: 'weight-relative',
  });
  assert.match(bytes, / --budget-bytes 68 /);
  assert.doesNotMatch(bytes, /--eval-data/);
});

test('axis labels drop the model prefix and the .weight suffix', () => {
  assert.equal(axisLabel('model.layers.12.mlp.down_proj.weight'), '12.mlp.down_proj');
  assert.equal(axisLabel('encoder.fc1'), 'encoder.fc1');
});

test('fused goal: layers of one fused group get one format and the series marks the group; the goal survives sanitizing', () => {
  const two = (name: string, fuse: string | undefined, cheapErr: number, richErr: number): AllocationLayer => ({
    name,
    shape: [4, 4],
    weightSq: 100,
    outputSq: 100,
    outputErrorKind: 'exact',
    ...(fuse ? { fuse } : {}),
    options: [
      {
        format: 'mxint3',
        bits: Float64Array.of(56),
        weightErrSq: Float64Array.of(cheapErr),
        outputErrSq: Float64Array.of(cheapErr),
      },
      {
        format: 'mxint4',
        bits: Float64Array.of(72),
        weightErrSq: Float64Array.of(richErr),
        outputErrSq: Float64Array.of(richErr),
      },
    ],
  });
  // q is sensitive, k is not: alone they would take different formats.
  const qk = [two('a.q_proj.weight', 'q/k/v of a', 50, 1), two('a.k_proj.weight', 'q/k/v of a', 1.1, 1)];
  const goal: AllocationGoal = { budget: { bitsPerWeight: 128 / 32 }, unit: 'bits', objective: 'output-relative' };
  const free = runAllocation(qk, goal, true);
  assert.ok(free.ok);
  assert.deepEqual(
    free.result.best.choices.map((c) => c.format),
    ['mxint4', 'mxint3'],
  );
  const fused = runAllocation(qk, { ...goal, fused: true }, true);
  assert.ok(fused.ok);
  const formats = fused.result.best.choices.map((c) => c.format);
  assert.equal(new Set(formats).size, 1, `one format: ${formats.join(', ')}`);
  assert.deepEqual(rankSeries(qk, fused.result).groups, ['q/k/v of a', 'q/k/v of a']);
  assert.deepEqual(rankSeries(qk, free.result).groups, [null, null]);
  assert.equal(sanitizeAllocationGoal({ ...goal, fused: true })?.fused, true);
  assert.equal(sanitizeAllocationGoal({ ...goal, fused: 'yes' })?.fused, undefined);
});
