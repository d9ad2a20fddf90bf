import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupByBlock, layersToAnalyse, sortByError } from '../../../src/extension/views/layerGroups';
import type { LinearLayer } from '../../../src/shared/checkpointSummary';

function layer(name: string, block: number | null, quantizedByDefault = true): LinearLayer {
  return {
    name,
    shape: [8, 8],
    storedTransposed: false,
    block,
    role: name.split('.').at(-2) ?? name,
    quantizedByDefault,
    dtype: 'F32',
    file: '/x',
  };
}

const layers = [
  layer('model.embed_tokens.weight', null, false),
  layer('model.layers.10.mlp.up_proj.weight', 10),
  layer('model.layers.2.self_attn.q_proj.weight', 2),
  layer('model.layers.2.mlp.up_proj.weight', 2),
  layer('lm_head.weight', null, false),
];

test('blocks in numeric order, then the layers outside the blocks', () => {
  const groups = groupByBlock(layers);
  assert.deepEqual(
    groups.map((g) => [g.label, g.layers.length]),
    [
      ['Block 2', 2],
      ['Block 10', 1],
      ['Other layers', 2],
    ],
  );
  assert.deepEqual(
    groupByBlock([layer('fc', null)]).map((g) => g.label),
    ['Layers'],
  );
});

test('sorting by error puts the worst first and the unanalysed last, in file order', () => {
  const errors: Record<string, number> = {
    'model.layers.2.mlp.up_proj.weight': 0.05,
    'model.layers.10.mlp.up_proj.weight': 0.2,
  };
  const sorted = sortByError(layers, (n) => errors[n] ?? null).map((l) => l.name);
  assert.deepEqual(sorted, [
    'model.layers.10.mlp.up_proj.weight',
    'model.layers.2.mlp.up_proj.weight',
    'model.embed_tokens.weight',
    'model.layers.2.self_attn.q_proj.weight',
    'lm_head.weight',
  ]);
});

test('"analyse all" covers the layers quantized by default, or every layer when none is marked', () => {
  assert.equal(layersToAnalyse(layers).length, 3);
  const none = [layer('a', null, false), layer('b', null, false)];
  assert.equal(layersToAnalyse(none).length, 2);
});
