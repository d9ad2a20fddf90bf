import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignShards, estimatedCost, parseShard, shardOf, type CostItem } from '../../../src/engine/store/shard';
import { mulberry32 } from '../../../src/engine/random';

/** A 70B-like layer list: 80 blocks of q/k/v/o (8192, k/v 1024) and gate/up/down (28672). */
function llama70b(): CostItem[] {
  const items: CostItem[] = [];
  for (let b = 0; b < 80; b++) {
    const p = `model.layers.${b}`;
    items.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [8192, 8192] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [1024, 8192] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [1024, 8192] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [8192, 8192] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [28672, 8192] },
      { name: `${p}.mlp.up_proj.weight`, shape: [28672, 8192] },
      { name: `${p}.mlp.down_proj.weight`, shape: [8192, 28672] },
    );
  }
  return items;
}

const cost = (i: CostItem) => estimatedCost(i.shape, { spectra: true, maxRank: 32 });

function shuffled<T>(a: T[], seed: number): T[] {
  const r = mulberry32(seed);
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

test('shards cover every layer exactly once, for any count, including more shards than layers', () => {
  const items = llama70b().slice(0, 23);
  for (const n of [1, 2, 3, 4, 7, 23, 40]) {
    const shards = assignShards(items, n, cost);
    assert.equal(shards.length, n);
    const names = shards.flat().map((i) => i.name);
    assert.equal(names.length, items.length, `N=${n}`);
    assert.deepEqual(new Set(names), new Set(items.map((i) => i.name)), `N=${n}`);
  }
});

test('the assignment is deterministic: the same from every task, whatever order the layers came in', () => {
  const items = llama70b();
  const a = assignShards(items, 16, cost).map((s) => s.map((i) => i.name).sort());
  const b = assignShards(shuffled(items, 3), 16, cost).map((s) => s.map((i) => i.name).sort());
  assert.deepEqual(a, b);
  // Each shard lists its layers in the checkpoint's order.
  const s5 = shardOf(items, { index: 5, count: 16 }, cost);
  const order = new Map(items.map((it, i) => [it.name, i]));
  assert.deepEqual(
    s5.map((i) => order.get(i.name)),
    s5.map((i) => order.get(i.name)).sort((x, y) => x! - y!),
  );
});

test('shards are balanced by estimated cost: within 4/3 of the best possible makespan', () => {
  const items = llama70b();
  for (const n of [4, 8, 32, 100]) {
    const loads = assignShards(items, n, cost).map((s) => s.reduce((acc, i) => acc + cost(i), 0));
    const total = loads.reduce((a, b) => a + b, 0);
    const lowerBound = Math.max(total / n, ...items.map(cost));
    const worst = Math.max(...loads);
    assert.ok(worst <= (4 / 3) * lowerBound, `N=${n}: worst ${worst} vs bound ${lowerBound}`);
    // And far better than splitting by count: shards of MLP layers would take 3× those of k/v.
    if (n === 8) assert.ok(worst / (total / n) < 1.05, `N=8 imbalance ${worst / (total / n)}`);
  }
});

test('the cost estimate grows with size, the rank and the spectra', () => {
  assert.ok(cost({ name: 'a', shape: [28672, 8192] }) > cost({ name: 'b', shape: [8192, 8192] }));
  assert.ok(cost({ name: 'b', shape: [8192, 8192] }) > cost({ name: 'c', shape: [1024, 8192] }));
  const s = (spectra: boolean, maxRank: number) => estimatedCost([4096, 4096], { spectra, maxRank });
  assert.ok(s(true, 32) > s(false, 32));
  assert.ok(s(false, 256) > s(false, 32));
});

test('--shard i/N and auto: parsed from the flag or the job array, bad values refused with the reason', () => {
  assert.deepEqual(parseShard('0/4', {}), { index: 0, count: 4 });
  assert.deepEqual(parseShard('3/4', {}), { index: 3, count: 4 });
  for (const [bad, why] of [
    ['4/4', /between 0 and 3/],
    ['-1/4', /whole number/],
    ['1/0', /between 1 and/],
    ['1.5/4', /whole number/],
    ['1/4/2', /i\/N/],
    ['x', /i\/N/],
    ['0/1000000', /between 1 and 100000/],
  ] as const) {
    assert.throws(() => parseShard(bad, {}), why, bad);
  }
  const slurm = {
    SLURM_ARRAY_TASK_ID: '2',
    SLURM_ARRAY_TASK_COUNT: '4',
    SLURM_ARRAY_TASK_MIN: '0',
    SLURM_ARRAY_TASK_MAX: '3',
  };
  assert.deepEqual(parseShard('auto', slurm), { index: 2, count: 4 });
  // --array=1-4 and --array=0-30:10 number tasks differently; the shard is the task's position.
  assert.deepEqual(
    parseShard('auto', { ...slurm, SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '4' }),
    { index: 3, count: 4 },
  );
  assert.deepEqual(
    parseShard('auto', {
      SLURM_ARRAY_TASK_ID: '20',
      SLURM_ARRAY_TASK_COUNT: '4',
      SLURM_ARRAY_TASK_MIN: '0',
      SLURM_ARRAY_TASK_MAX: '30',
    }),
    { index: 2, count: 4 },
  );
  assert.throws(
    () =>
      parseShard('auto', {
        SLURM_ARRAY_TASK_ID: '5',
        SLURM_ARRAY_TASK_COUNT: '3',
        SLURM_ARRAY_TASK_MIN: '0',
        SLURM_ARRAY_TASK_MAX: '9',
      }),
    /not evenly spaced; use --array=0-2/,
  );
  assert.throws(() => parseShard('auto/8', slurm), /disagrees with the Slurm array's 4 tasks/);
  assert.deepEqual(parseShard('auto/8', { JOB_COMPLETION_INDEX: '7' }), { index: 7, count: 8 });
  assert.throws(() => parseShard('auto/8', { JOB_COMPLETION_INDEX: '8' }), /between 0 and 7/);
  assert.throws(() => parseShard('auto', { JOB_COMPLETION_INDEX: '1' }), /pass --shard auto\/N/);
  assert.throws(() => parseShard('auto', {}), /SLURM_ARRAY_TASK_ID.*JOB_COMPLETION_INDEX/);
});
