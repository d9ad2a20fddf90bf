import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allocate,
  allocationFrontier,
  allocationLayer,
  allocationRecipe,
  optimumLowerBound,
  uniformAt,
  type AllocationLayer,
  type AllocationObjective,
} from '../../../src/engine/methods/allocation';
import { analyzeLayer } from '../../../src/engine/methods/analyzeLayer';
import { parseRecipe } from '../../../src/engine/methods/recipe';
import { activations, rng, statistics, weights } from './helpers';

/**
 * A synthetic layer: per format, error decays with rank at a layer-specific rate (some layers are
 * "sensitive", others not), with bumps so that curves are not convex; integer bit costs.
 */
function syntheticLayer(i: number, formats: number, maxRank: number, seed: number): AllocationLayer {
  const r = rng(seed);
  const size = 2 + Math.floor((r() + 0.5) * 6);
  const sensitivity = 0.1 + (r() + 0.5) * 5;
  return {
    name: `layer.${i}.weight`,
    shape: [size * 8, size * 4],
    weightSq: 1,
    outputSq: 1,
    outputErrorKind: 'exact',
    options: Array.from({ length: formats }, (_, f) => {
      const base = sensitivity * 2 ** -(2 * f);
      const decay = 0.3 + (r() + 0.5) * 0.6;
      const bits = Float64Array.from({ length: maxRank + 1 }, (_, k) => size * 32 * (3 + f) + k * size * 10);
      const err = Float64Array.from({ length: maxRank + 1 }, (_, k) => base * decay ** k * (1 + 0.3 * (r() + 0.5)));
      return { format: ['mxint4', 'mxint3', 'mxint2'][f]!, bits, weightErrSq: err, outputErrSq: err };
    }),
  };
}

function bruteForce(layers: AllocationLayer[], budget: number, objective: AllocationObjective): number {
  let best = Infinity;
  const walk = (l: number, cost: number, value: number) => {
    if (cost > budget) return;
    if (l === layers.length) {
      best = Math.min(best, value);
      return;
    }
    for (const o of layers[l]!.options) {
      for (let k = 0; k < o.bits.length; k++) {
        const v = objective.startsWith('output') ? o.outputErrSq![k]! : o.weightErrSq[k]!;
        walk(l + 1, cost + o.bits[k]!, value + v);
      }
    }
  };
  walk(0, 0, 0);
  return best;
}

test('on small instances: greedy and DP bracket the brute-force optimum, and the budget holds', () => {
  let worstGap = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const layers = Array.from({ length: 4 }, (_, i) => syntheticLayer(i, 2, 4, seed * 10 + i));
    const min = layers.reduce((s, l) => s + Math.min(...l.options.map((o) => o.bits[0]!)), 0);
    const max = layers.reduce((s, l) => s + Math.max(...l.options.map((o) => o.bits[o.bits.length - 1]!)), 0);
    const budget = Math.round(min + (max - min) * (0.15 + 0.7 * ((seed * 0.37) % 1)));
    const opt = bruteForce(layers, budget, 'output-absolute');
    const r = allocate(layers, { bytes: budget / 8 }, { objective: 'output-absolute', bins: budget - min });
    for (const s of [r.greedy, r.best, r.exact!.summary]) {
      assert.ok(s.totalBits <= budget + 1e-9, `over budget: ${s.totalBits} > ${budget}`);
      assert.ok(s.objective >= opt - 1e-12, 'nothing beats the optimum');
    }
    // Integer costs and one unit per bit: the DP is exact.
    assert.ok(Math.abs(r.exact!.summary.objective - opt) <= 1e-12 * opt, `DP ${r.exact!.summary.objective} vs ${opt}`);
    assert.ok(Math.abs(r.exact!.lowerBound - opt) <= 1e-12 * opt);
    assert.ok(r.lpLowerBound <= opt + 1e-12, 'the LP relaxation is a lower bound');
    assert.ok(optimumLowerBound(r) <= opt + 1e-12);
    worstGap = Math.max(worstGap, r.greedy.objective / opt - 1);
  }
  assert.ok(worstGap < 0.5, `greedy within 50 % of optimal on these instances (worst ${worstGap})`);
});

test('coarse bins: the rounded-up DP stays feasible and the rounded-down one stays a lower bound', () => {
  const layers = Array.from({ length: 5 }, (_, i) => syntheticLayer(i, 3, 6, 77 + i));
  const min = layers.reduce((s, l) => s + Math.min(...l.options.map((o) => o.bits[0]!)), 0);
  const budget = min * 1.4;
  const opt = bruteForce(layers, budget, 'output-relative');
  const r = allocate(layers, { bytes: budget / 8 }, { objective: 'output-relative', bins: 37 });
  assert.ok(r.exact!.summary.totalBits <= budget);
  assert.ok(r.exact!.summary.objective >= opt - 1e-12);
  assert.ok(r.exact!.lowerBound <= opt + 1e-12);
});

test('the allocation beats (or ties) every uniform rank at the same budget and the recipe round-trips', () => {
  const layers = Array.from({ length: 8 }, (_, i) => syntheticLayer(i, 1, 16, 300 + i));
  for (const k of [1, 3, 6, 10]) {
    const u = uniformAt(layers, 'mxint4', k, 'output-relative')!;
    const r = allocate(layers, { bytes: u.totalBits / 8 }, { objective: 'output-relative' });
    assert.equal(r.bestUniform!.rank, k);
    assert.ok(r.best.objective <= u.objective, `k=${k}: ${r.best.objective} vs uniform ${u.objective}`);
    assert.ok(r.best.totalBits <= u.totalBits + 1e-9);
    const recipe = allocationRecipe(r.best, {
      method: 'l2qer',
      factorFormat: 'mxint8',
      objective: 'output-relative',
      budget: { bitsPerWeight: r.best.bitsPerWeight },
    });
    const back = parseRecipe(JSON.stringify(recipe));
    assert.equal(Object.keys(back.layers).length, layers.length);
  }
  const frontier = allocationFrontier(layers, 'mxint4', 'output-relative', [0, 2, 4]);
  assert.equal(frontier.length, 3);
  for (const p of frontier) assert.ok(p.allocated <= p.uniform + 1e-15);
});

test('a budget below the cheapest allocation and an output objective without calibration are refused', () => {
  const layers = [syntheticLayer(0, 1, 4, 5)];
  assert.throws(() => allocate(layers, { bytes: 1 }, { objective: 'weight-absolute' }), /below the cheapest/);
  const noCal = {
    ...layers[0]!,
    outputSq: null,
    options: layers[0]!.options.map((o) => ({ ...o, outputErrSq: null })),
  };
  assert.throws(() => allocate([noCal], { bitsPerWeight: 16 }, { objective: 'output-relative' }), /needs calibration/);
});

test('from real analyses: per-format curves, bit costs from lowRankCost, weight objective without calibration', async () => {
  const settings = { method: 'lqer', factorFormat: 'mxint8', factorTiling: 'last-dim', maxRank: 8 } as const;
  const layers: AllocationLayer[] = [];
  for (let i = 0; i < 3; i++) {
    const w = weights(32, 32, 40 + i, 0.02 * (i + 1));
    const input = { name: `l${i}.weight`, data: w, out: 32, in: 32 };
    const analyses = [];
    for (const weightFormat of ['mxint4', 'mxint3'])
      analyses.push(await analyzeLayer(input, { ...settings, weightFormat }));
    layers.push(allocationLayer(analyses));
  }
  assert.equal(layers[0]!.options[1]!.format, 'mxint3');
  assert.equal(layers[0]!.options[0]!.bits[0], 32 * 32 * 4.5);
  const r = allocate(layers, { bitsPerWeight: 4.5 }, { objective: 'weight-relative' });
  assert.ok(r.best.bitsPerWeight <= 4.5 + 1e-12);
  assert.ok(r.best.objective <= r.bestUniform!.summary.objective);
  // With calibration the output objective is available.
  const x = activations(128, 32, 9);
  const cal = { ...statistics(x, 128, 32), tokens: 128 };
  const a = await analyzeLayer(
    { name: 'c.weight', data: weights(32, 32, 3), out: 32, in: 32, calibration: cal },
    {
      ...settings,
      method: 'l2qer',
      weightFormat: 'mxint3',
    },
  );
  const rc = allocate([allocationLayer([a])], { bitsPerWeight: 5 }, { objective: 'output-relative' });
  assert.ok(rc.best.meanOutputError! > 0);
});
