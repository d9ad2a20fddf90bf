import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cellAt, heatmapGrid, heatmapValues } from '../../../webview/lib/heatmap';

const layers = [
  { name: 'embed', block: null, role: 'embedding' },
  { name: 'l1.q', block: 1, role: 'q_proj' },
  { name: 'l0.q', block: 0, role: 'q_proj' },
  { name: 'l0.up', block: 0, role: 'up_proj' },
  { name: 'l0.e1', block: 0, role: 'expert' },
  { name: 'l0.e2', block: 0, role: 'expert' },
];

test('blocks ascending as columns, roles in first-use order as rows', () => {
  const g = heatmapGrid(layers)!;
  assert.deepEqual(g.blocks, [0, 1]);
  assert.deepEqual(g.roles, ['q_proj', 'up_proj', 'expert']);
  assert.deepEqual(g.cells[2]![0], ['l0.e1', 'l0.e2']);
  assert.deepEqual(g.cells[1]![1], []);
  assert.equal(heatmapGrid([{ name: 'fc', block: null, role: 'fc' }]), null);
});

test('a cell shows its worst layer; unanalysed cells are NaN', () => {
  const g = heatmapGrid(layers)!;
  const values: Record<string, number> = { 'l0.q': 0.1, 'l0.e1': 0.2, 'l0.e2': 0.3 };
  const v = heatmapValues(g, (n) => values[n]);
  assert.equal(v[0], 0.1);
  assert.ok(Number.isNaN(v[1]!));
  assert.equal(v[2 * 2 + 0], 0.3);
});

test('points map to cells, and outside the grid to nothing', () => {
  const layout = { left: 100, top: 20, cellWidth: 10, cellHeight: 20, rows: 3, cols: 2 };
  assert.deepEqual(cellAt(115, 45, layout), { row: 1, col: 1 });
  assert.equal(cellAt(99, 45, layout), null);
  assert.equal(cellAt(121, 45, layout), null);
  assert.equal(cellAt(105, 81, layout), null);
});
