/**
 * The checkpoint comparison panel (ΔW between two checkpoints, one panel per pair): its view type,
 * its messages in both directions, the view's own choices (tolerance, sort, selected layer) and its
 * saved state, parsed, never trusted (it comes back from disk after a reload).
 */
import { DEFAULT_CHANGE_TOLERANCE } from '../../engine/methods/checkpointComparisonTypes';
import type { CheckpointComparison } from '../../engine/methods/checkpointComparisonTypes';
import type { JobProgress, UserFacingError } from './common';

export { DEFAULT_CHANGE_TOLERANCE };
export type { CheckpointComparison };

export const COMPARISON_VIEW_TYPE = 'quantLens.comparison';

/** Host → checkpoint comparison panel. */
export type HostToComparison =
  | { type: 'setup'; a: string; b: string; view: ComparisonView }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'comparison'; comparison: CheckpointComparison; timeMs: number }
  | { type: 'error'; error: UserFacingError };

/** Checkpoint comparison panel → host. */
export type ComparisonToHost =
  { type: 'ready' } | { type: 'cancel' } | { type: 'recompute' } | { type: 'openOverview'; which: 'a' | 'b' };

/** The comparison view's own choices. */
export interface ComparisonView {
  tolerance: number;
  sort: { column: ComparisonColumn; descending: boolean };
  selected: string | null;
  changedOnly: boolean;
}

export type ComparisonColumn =
  'name' | 'shape' | 'relative' | 'maxAbs' | 'sigma1' | 'rank90' | 'stableRank' | 'verdict';

/** What the comparison panel stores with setState, and what the serializer gets back after a reload. */
export interface ComparisonPanelState {
  version: 1;
  a: string;
  b: string;
  view: ComparisonView;
}

export const COMPARISON_COLUMNS: readonly ComparisonColumn[] = [
  'name',
  'shape',
  'relative',
  'maxAbs',
  'sigma1',
  'rank90',
  'stableRank',
  'verdict',
];

export const DEFAULT_COMPARISON_VIEW: ComparisonView = {
  tolerance: DEFAULT_CHANGE_TOLERANCE,
  sort: { column: 'relative', descending: true },
  selected: null,
  changedOnly: false,
};

export function sanitizeComparisonView(value: unknown): ComparisonView {
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const t = v.tolerance;
  const sort = typeof v.sort === 'object' && v.sort !== null ? (v.sort as Record<string, unknown>) : {};
  const column = (COMPARISON_COLUMNS as readonly unknown[]).includes(sort.column)
    ? (sort.column as ComparisonColumn)
    : DEFAULT_COMPARISON_VIEW.sort.column;
  return {
    tolerance: typeof t === 'number' && Number.isFinite(t) && t >= 0 ? t : DEFAULT_COMPARISON_VIEW.tolerance,
    sort: {
      column,
      descending: typeof sort.descending === 'boolean' ? sort.descending : DEFAULT_COMPARISON_VIEW.sort.descending,
    },
    selected: typeof v.selected === 'string' && v.selected ? v.selected : null,
    changedOnly: v.changedOnly === true,
  };
}

/** A saved comparison panel; null when it does not name both checkpoints. */
export function parseComparisonPanelState(value: unknown): ComparisonPanelState | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.a !== 'string' || !v.a || typeof v.b !== 'string' || !v.b) return null;
  if (v.version !== undefined && v.version !== 1) return null;
  return { version: 1, a: v.a, b: v.b, view: sanitizeComparisonView(v.view) };
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]+/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

function parentName(path: string): string {
  const parts = path.split(/[\\/]+/).filter(Boolean);
  return parts.length > 1 ? parts[parts.length - 2]! : '';
}

/**
 * How the panel names the two checkpoints: their file names, or, when the names are the same (a
 * model.safetensors in two folders, the usual case), their folder and file names.
 */
export function comparisonLabels(a: string, b: string): { a: string; b: string } {
  const na = baseName(a);
  const nb = baseName(b);
  if (na !== nb) return { a: na, b: nb };
  const pa = parentName(a);
  const pb = parentName(b);
  return pa && pb && pa !== pb ? { a: `${pa}/${na}`, b: `${pb}/${nb}` } : { a, b };
}
