import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesFilter, nextSort, sortEntries, type TableEntry } from '../../../webview/lib/layerTable';
import type { LinearLayer } from '../../../src/shared/checkpointSummary';
import type { LayerResultRow } from '../../../src/shared/protocol/overview';

function layer(name: string, role: string, shape: [number, number]): LinearLayer {
  return {
    name,
    shape,
    storedTransposed: false,
    block: null,
    role,
    quantizedByDefault: true,
    dtype: 'BF16',
    file: '/m',
  };
}

function row(name: string, weightError: number | null): LayerResultRow {
  return {
    name,
    weightErrorRtn: weightError,
    weightError,
    outputError: null,
    outputErrorEstimated: false,
    weightSqnrDb: null,
    recovered: null,
    bitsPerWeight: 4.5,
    bytes: 1,
    nonFinite: 0,
  };
}

const layers = [
  layer('model.layers.10.mlp.up_proj.weight', 'up_proj', [11008, 4096]),
  layer('model.layers.2.mlp.up_proj.weight', 'up_proj', [11008, 4096]),
  layer('model.layers.2.self_attn.q_proj.weight', 'q_proj', [4096, 4096]),
];
const entries: TableEntry[] = layers.map((l, index) => ({
  layer: l,
  index,
  row: index === 2 ? undefined : row(l.name, index === 0 ? 0.02 : 0.05),
}));

test('names sort with their numbers as numbers', () => {
  const s = sortEntries(entries, { column: 'name', descending: false }).map((e) => e.layer.name);
  assert.deepEqual(s, [
    'model.layers.2.mlp.up_proj.weight',
    'model.layers.2.self_attn.q_proj.weight',
    'model.layers.10.mlp.up_proj.weight',
  ]);
});

test('numeric columns sort either way with the missing values last', () => {
  const desc = sortEntries(entries, { column: 'error', descending: true }).map((e) => e.index);
  assert.deepEqual(desc, [1, 0, 2]);
  const asc = sortEntries(entries, { column: 'error', descending: false }).map((e) => e.index);
  assert.deepEqual(asc, [0, 1, 2]);
});

test('clicking a header: errors worst-first, the same column flips', () => {
  assert.deepEqual(nextSort({ column: 'name', descending: false }, 'error'), { column: 'error', descending: true });
  assert.deepEqual(nextSort({ column: 'error', descending: true }, 'error'), { column: 'error', descending: false });
  assert.deepEqual(nextSort({ column: 'error', descending: true }, 'name'), { column: 'name', descending: false });
});

test('filter terms must all match; /regex/ terms are regular expressions', () => {
  const l = layers[0]!;
  assert.ok(matchesFilter(l, ''));
  assert.ok(matchesFilter(l, 'mlp UP'));
  assert.ok(!matchesFilter(l, 'mlp q_proj'));
  assert.ok(matchesFilter(l, '/layers\\.1[0-9]\\./'));
  assert.ok(!matchesFilter(layers[1]!, '/layers\\.1[0-9]\\./'));
  assert.ok(!matchesFilter(l, '/[unclosed/'));
  assert.ok(matchesFilter(l, 'bf16'), 'the dtype is searched too');
});
