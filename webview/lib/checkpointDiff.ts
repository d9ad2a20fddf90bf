/**
 * The checkpoint comparison table: each layer's verdict at the tolerance the view shows (the
 * worker's verdict used its own), sorting by any column, the summary counts, and what the
 * spectrum chart of the selected layer draws. Pure; unit-tested.
 */
import type { ChangeVerdict, LayerDifference } from '../../src/engine/methods/checkpointComparisonTypes';
import type { ComparisonColumn, ComparisonView } from '../../src/shared/protocol/comparison';

export type { ChangeVerdict, LayerDifference };

/**
 * identical: ΔW = 0; unchanged: ‖ΔW‖/‖W₁‖ ≤ tolerance; changed otherwise (an infinite ratio too,
 * and NaN or infinite weights that differ between the two: no tolerance covers those).
 */
export function verdictAt(
  d: Pick<LayerDifference, 'diffNorm' | 'relative' | 'nonFinite'>,
  tolerance: number,
): ChangeVerdict {
  if (d.nonFinite?.differ) return 'changed';
  if (d.diffNorm === 0) return 'identical';
  return Number.isFinite(d.relative) && d.relative <= tolerance ? 'unchanged' : 'changed';
}

const VERDICT_ORDER: Record<ChangeVerdict, number> = { identical: 0, unchanged: 1, changed: 2 };

/** Compares names with their numbers as numbers: "layers.2." before "layers.10.". */
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

function value(d: LayerDifference, column: ComparisonColumn, tolerance: number): number | null {
  switch (column) {
    case 'shape':
      return d.shape[0] * d.shape[1];
    case 'relative':
      return Number.isFinite(d.relative) ? d.relative : Infinity;
    case 'maxAbs':
      return d.maxAbs;
    case 'sigma1':
      return d.sigma.length ? d.sigma[0]! : null;
    case 'rank90':
      return d.rank90;
    case 'stableRank':
      return d.stableRank;
    case 'verdict':
      return VERDICT_ORDER[verdictAt(d, tolerance)];
    default:
      return null;
  }
}

/** Sorted copy; layers without a value for the column go last whatever the direction; ties keep the file order. */
export function sortDifferences(
  layers: readonly LayerDifference[],
  sort: ComparisonView['sort'],
  tolerance: number,
): LayerDifference[] {
  const index = new Map(layers.map((l, i) => [l.name, i]));
  const dir = sort.descending ? -1 : 1;
  return [...layers].sort((a, b) => {
    const tie = index.get(a.name)! - index.get(b.name)!;
    if (sort.column === 'name') return dir * collator.compare(a.name, b.name) || tie;
    const va = value(a, sort.column, tolerance);
    const vb = value(b, sort.column, tolerance);
    if (va === null && vb === null) return tie;
    if (va === null) return 1;
    if (vb === null) return -1;
    return dir * (va - vb) || tie;
  });
}

/** The next sort after a click on a header: the same column flips; sizes start largest first. */
export function nextComparisonSort(current: ComparisonView['sort'], column: ComparisonColumn): ComparisonView['sort'] {
  if (current.column === column) return { column, descending: !current.descending };
  return { column, descending: column !== 'name' };
}

export interface DiffCounts {
  changed: number;
  unchanged: number;
  identical: number;
}

export function diffCounts(layers: readonly LayerDifference[], tolerance: number): DiffCounts {
  const c: DiffCounts = { changed: 0, unchanged: 0, identical: 0 };
  for (const l of layers) c[verdictAt(l, tolerance)]++;
  return c;
}

/** The rows the table shows. */
export function visibleDifferences(layers: readonly LayerDifference[], view: ComparisonView): LayerDifference[] {
  const shown = view.changedOnly ? layers.filter((l) => verdictAt(l, view.tolerance) === 'changed') : layers;
  return sortDifferences(shown, view.sort, view.tolerance);
}

/** The layer the chart shows: the selected one if still there, else the most changed. */
export function chartLayer(layers: readonly LayerDifference[], selected: string | null): LayerDifference | null {
  const hit = selected ? layers.find((l) => l.name === selected) : undefined;
  if (hit) return hit;
  let best: LayerDifference | null = null;
  for (const l of layers) if (!best || (Number.isFinite(l.relative) ? l.relative : Infinity) > best.relative) best = l;
  return best;
}

/** "0.0512 %"-style relative sizes that stay readable from 1e-7 to 100 %. */
export function formatRelative(v: number): string {
  if (!Number.isFinite(v)) return '∞';
  if (v === 0) return '0';
  const pct = 100 * v;
  return pct >= 0.01 ? `${pct.toPrecision(3)} %` : `${v.toExponential(2)}`;
}

/**
 * The tolerance field: a ratio ("0.005", "5e-3") or a percentage ("0.5 %"); null when it is not a
 * non-negative number.
 */
export function parseTolerance(text: string): number | null {
  const m = /^\s*([+]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(%?)\s*$/i.exec(text);
  if (!m) return null;
  const v = Number(m[1]) / (m[2] ? 100 : 1);
  return Number.isFinite(v) && v >= 0 ? v : null;
}

/** What a table row shows, in column order. */
export interface DifferenceCells {
  name: string;
  shape: string;
  relative: string;
  maxAbs: string;
  sigma1: string;
  rank90: string;
  stableRank: string;
  verdict: ChangeVerdict;
}

export function differenceCells(d: LayerDifference, tolerance: number): DifferenceCells {
  const full = Math.min(d.shape[0], d.shape[1]);
  return {
    name: d.name === d.nameB ? d.name : `${d.name} ↔ ${d.nameB}`,
    shape: `${d.shape[0]}×${d.shape[1]}`,
    relative: formatRelative(d.relative),
    maxAbs: d.maxAbs === 0 ? '0' : d.maxAbs.toExponential(2),
    sigma1: !d.sigma.length ? '—' : d.sigma[0] === 0 ? '0' : d.sigma[0]!.toExponential(2),
    rank90: d.rank90 === null || d.diffNorm === 0 ? '—' : `${d.rank90} / ${full}`,
    stableRank: d.stableRank === null ? '—' : d.stableRank.toFixed(2),
    verdict: verdictAt(d, tolerance),
  };
}
