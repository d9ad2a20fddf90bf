import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chartLayer,
  diffCounts,
  differenceCells,
  formatRelative,
  nextComparisonSort,
  parseTolerance,
  sortDifferences,
  verdictAt,
  visibleDifferences,
  type LayerDifference,
} from '../../../webview/lib/checkpointDiff';
import { DEFAULT_COMPARISON_VIEW } from '../../../src/shared/protocol/comparison';

function diff(name: string, relative: number, extra: Partial<LayerDifference> = {}): LayerDifference {
  const normA = 10;
  const diffNorm = Number.isFinite(relative) ? relative * normA : 1;
  return {
    name,
    nameB: name,
    shape: [4, 8],
    normA,
    normB: normA,
    diffNorm,
    relative,
    maxAbs: diffNorm / 2,
    verdict: 'changed',
    sigma: diffNorm > 0 ? Float64Array.from([diffNorm * 0.9, diffNorm * 0.3, 0, 0]) : new Float64Array(4),
    rank90: diffNorm > 0 ? 1 : 0,
    stableRank: diffNorm > 0 ? 1.2 : null,
    ...extra,
  };
}

const layers = [
  diff('model.layers.10.q', 0.02),
  diff('model.layers.2.q', 0),
  diff('model.layers.1.q', 1e-4),
  diff('model.layers.3.q', 0.3),
];

test('verdicts follow the tolerance the view shows, not the one the worker used', () => {
  const d = diff('x', 0.01, { verdict: 'unchanged' });
  assert.equal(verdictAt(d, 0.05), 'unchanged');
  assert.equal(verdictAt(d, 0.001), 'changed');
  assert.equal(verdictAt(d, 0.01), 'unchanged', 'at the tolerance itself a layer is unchanged');
  assert.equal(verdictAt(diff('zero', 0), 0), 'identical', 'ΔW = 0 is identical even at tolerance 0');
  assert.equal(verdictAt(diff('new', Infinity, { normA: 0 }), 1e9), 'changed', 'W₁ = 0, W₂ ≠ 0 always changed');
  const holes = diff('nan', 1e-4, { nonFinite: { a: 0, b: 3, differ: true } });
  assert.equal(
    verdictAt(holes, 0.5),
    'changed',
    'NaN weights where the other side has numbers: changed at any tolerance',
  );
  const sameHoles = diff('same-nan', 1e-4, { nonFinite: { a: 3, b: 3, differ: false } });
  assert.equal(verdictAt(sameHoles, 0.5), 'unchanged', 'the same NaNs on both sides: judged by the rest');
});

test('counts at a tolerance add up to the layers and move with it', () => {
  assert.deepEqual(diffCounts(layers, 5e-3), { changed: 2, unchanged: 1, identical: 1 });
  assert.deepEqual(diffCounts(layers, 1e-5), { changed: 3, unchanged: 0, identical: 1 });
  assert.deepEqual(diffCounts(layers, 0.5), { changed: 0, unchanged: 3, identical: 1 });
});

test('sorting by size puts the most changed first; names sort with their numbers as numbers', () => {
  const bySize = sortDifferences(layers, { column: 'relative', descending: true }, 5e-3).map((l) => l.name);
  assert.deepEqual(bySize, ['model.layers.3.q', 'model.layers.10.q', 'model.layers.1.q', 'model.layers.2.q']);
  const byName = sortDifferences(layers, { column: 'name', descending: false }, 5e-3).map((l) => l.name);
  assert.deepEqual(byName, ['model.layers.1.q', 'model.layers.2.q', 'model.layers.3.q', 'model.layers.10.q']);
  const byVerdict = sortDifferences(layers, { column: 'verdict', descending: true }, 5e-3).map((l) => l.name);
  // changed (in file order), then unchanged, then identical
  assert.deepEqual(byVerdict, ['model.layers.10.q', 'model.layers.3.q', 'model.layers.1.q', 'model.layers.2.q']);
});

test('an infinite relative difference sorts as the largest; missing spectra go last in either direction', () => {
  const withInf = [...layers, diff('fresh', Infinity, { normA: 0 })];
  assert.equal(sortDifferences(withInf, { column: 'relative', descending: true }, 0)[0]!.name, 'fresh');
  const noSpectrum = [diff('a', 0.1, { rank90: null }), diff('b', 0.2, { rank90: 3 }), diff('c', 0.3, { rank90: 1 })];
  for (const descending of [true, false]) {
    const names = sortDifferences(noSpectrum, { column: 'rank90', descending }, 0).map((l) => l.name);
    assert.equal(names[2], 'a', `descending ${descending}`);
  }
});

test('a header click flips the same column; a new column starts largest first, names A→Z', () => {
  assert.deepEqual(nextComparisonSort({ column: 'relative', descending: true }, 'relative'), {
    column: 'relative',
    descending: false,
  });
  assert.deepEqual(nextComparisonSort({ column: 'relative', descending: true }, 'maxAbs'), {
    column: 'maxAbs',
    descending: true,
  });
  assert.deepEqual(nextComparisonSort({ column: 'relative', descending: true }, 'name'), {
    column: 'name',
    descending: false,
  });
});

test('"changed only" hides unchanged and identical layers at the view tolerance', () => {
  const view = { ...DEFAULT_COMPARISON_VIEW, changedOnly: true, tolerance: 0.05 };
  assert.deepEqual(
    visibleDifferences(layers, view).map((l) => l.name),
    ['model.layers.3.q'],
  );
  assert.equal(visibleDifferences(layers, { ...view, changedOnly: false }).length, 4);
});

test('the chart shows the selected layer, or the most changed one when none (or a stale one) is selected', () => {
  assert.equal(chartLayer(layers, 'model.layers.1.q')!.name, 'model.layers.1.q');
  assert.equal(chartLayer(layers, null)!.name, 'model.layers.3.q');
  assert.equal(chartLayer(layers, 'gone')!.name, 'model.layers.3.q');
  assert.equal(chartLayer([], null), null);
});

test('the tolerance field takes ratios and percentages, and rejects the rest', () => {
  assert.equal(parseTolerance('0.005'), 0.005);
  assert.equal(parseTolerance(' 5e-3 '), 0.005);
  assert.equal(parseTolerance('7 %'), 0.07);
  assert.equal(parseTolerance('0.5%'), 0.005);
  assert.equal(parseTolerance('0'), 0);
  for (const bad of ['', '-0.1', 'abc', '1,5', '%', '0.1 %%']) assert.equal(parseTolerance(bad), null, bad);
});

test('cells: relative sizes stay readable, identical layers show no spectrum numbers, pairs show both names', () => {
  assert.equal(formatRelative(0.1), '10.0 %');
  assert.equal(formatRelative(0.0512), '5.12 %');
  assert.equal(formatRelative(1e-6), '1.00e-6');
  assert.equal(formatRelative(0), '0');
  assert.equal(formatRelative(Infinity), '∞');
  const same = differenceCells(diff('z', 0, { rank90: 0, stableRank: null }), 5e-3);
  assert.deepEqual(
    [same.relative, same.maxAbs, same.sigma1, same.rank90, same.stableRank, same.verdict],
    ['0', '0', '0', '—', '—', 'identical'],
  );
  const gguf = differenceCells(diff('blk.0.attn_q.weight', 0.02, { nameB: 'model.layers.0.q_proj.weight' }), 0.05);
  assert.equal(gguf.name, 'blk.0.attn_q.weight ↔ model.layers.0.q_proj.weight');
  assert.equal(gguf.rank90, '1 / 4');
  assert.equal(gguf.verdict, 'unchanged');
});
