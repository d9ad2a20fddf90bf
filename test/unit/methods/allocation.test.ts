import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allocate,
  allocationFrontier,
  allocationLayer,
  allocationRecipe,
  fuseKey,
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

/** The best objective when layers with one fuse key share a format (their ranks free). */
function bruteForceFused(layers: AllocationLayer[], budget: number): number {
  let best = Infinity;
  const walk = (l: number, cost: number, value: number, chosen: Map<string, string>) => {
    if (cost > budget) return;
    if (l === layers.length) {
      best = Math.min(best, value);
      return;
    }
    const layer = layers[l]!;
    const key = layer.fuse ?? `#${l}`;
    for (const o of layer.options) {
      const fixed = chosen.get(key);
      if (fixed !== undefined && fixed !== o.format) continue;
      const next = new Map(chosen).set(key, o.format);
      for (let k = 0; k < o.bits.length; k++) walk(l + 1, cost + o.bits[k]!, value + o.outputErrSq![k]!, next);
    }
  };
  walk(0, 0, 0, new Map());
  return best;
}

test('fused groups: members share one format, the budget holds, the LP bound stays a bound on the fused optimum', () => {
  let worstGap = 0;
  let differed = 0;
  for (let seed = 1; seed <= 25; seed++) {
    const layers = Array.from({ length: 5 }, (_, i) => ({
      ...syntheticLayer(i, 2, 3, seed * 17 + i),
      ...(i < 3 ? { fuse: 'q/k/v of block 0' } : {}),
    }));
    const min = layers.reduce((s, l) => s + Math.min(...l.options.map((o) => o.bits[0]!)), 0);
    const max = layers.reduce((s, l) => s + Math.max(...l.options.map((o) => o.bits[o.bits.length - 1]!)), 0);
    const budget = Math.round(min + (max - min) * (0.2 + 0.6 * ((seed * 0.41) % 1)));
    const opt = bruteForceFused(layers, budget);
    const r = allocate(layers, { bytes: budget / 8 }, { objective: 'output-absolute', fused: true });
    for (const s of [r.greedy, r.best, r.exact!.summary]) {
      assert.ok(s.totalBits <= budget + 1e-9, `over budget: ${s.totalBits} > ${budget}`);
      const formats = new Set(s.choices.slice(0, 3).map((c) => c.format));
      assert.equal(formats.size, 1, `q/k/v share a format: ${[...formats].join(', ')}`);
      assert.ok(s.objective >= opt - 1e-12, 'nothing beats the fused optimum');
      assert.deepEqual(
        s.choices.map((c) => c.fuse),
        ['q/k/v of block 0', 'q/k/v of block 0', 'q/k/v of block 0', undefined, undefined],
      );
    }
    assert.ok(r.lpLowerBound <= opt + 1e-12, 'the LP relaxation bounds the fused optimum');
    assert.ok(optimumLowerBound(r) <= opt + 1e-12);
    worstGap = Math.max(worstGap, r.best.objective / opt - 1);
    const free = allocate(layers, { bytes: budget / 8 }, { objective: 'output-absolute' });
    if (new Set(free.best.choices.slice(0, 3).map((c) => c.format)).size > 1) differed++;
  }
  assert.ok(differed > 0, 'some unfused allocations mix formats inside the group (so the constraint matters)');
  assert.ok(worstGap < 0.2, `fused allocation within 20 % of the fused optimum (worst ${worstGap})`);
});

test('fuseKey: q/k/v and gate/up of one module, all experts of one MoE block; nothing else', () => {
  const key = (name: string, role: string, block: number | null, group?: string) =>
    fuseKey({ name, role, block, ...(group ? { group } : {}) });
  assert.equal(key('model.layers.3.self_attn.q_proj.weight', 'q_proj', 3), 'q/k/v of model.layers.3.self_attn');
  assert.equal(key('model.layers.3.self_attn.v_proj.weight', 'v_proj', 3), 'q/k/v of model.layers.3.self_attn');
  assert.equal(key('model.layers.3.self_attn.o_proj.weight', 'o_proj', 3), undefined);
  assert.equal(key('model.layers.3.mlp.up_proj.weight', 'up_proj', 3), 'gate/up of model.layers.3.mlp');
  assert.equal(key('model.layers.3.mlp.down_proj.weight', 'down_proj', 3), undefined);
  assert.equal(key('blk.7.attn_k.weight', 'k_proj', 7), 'q/k/v of blk.7');
  assert.equal(key('blk.7.ffn_gate.weight', 'gate_proj', 7), 'gate/up of blk.7');
  assert.equal(
    key('model.layers.2.block_sparse_moe.experts.5.w2.weight', 'down_proj', 2, 'expert'),
    'experts of block 2',
  );
  assert.equal(key('lm_head.weight', 'lm_head', null), undefined);
});
