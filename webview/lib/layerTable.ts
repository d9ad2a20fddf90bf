/** Sorting and filtering of the overview's linear-layer table. Pure; unit-tested. */
import type { LinearLayer } from '../../src/shared/checkpointSummary';
import { headlineError } from '../../src/shared/errorScale';
import type { LayerResultRow } from '../../src/shared/protocol/overview';

export type LayerColumn =
  'name' | 'role' | 'shape' | 'dtype' | 'bits' | 'errorRtn' | 'error' | 'outputError' | 'sqnr' | 'recovered';

export interface SortState {
  column: LayerColumn;
  descending: boolean;
}

export interface TableEntry {
  layer: LinearLayer;
  /** Position in the checkpoint: the tie-breaker, and the "natural" order. */
  index: number;
  row: LayerResultRow | undefined;
}

/** Compares names with their numbers as numbers: "layers.2." before "layers.10.". */
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

function numeric(e: TableEntry, column: LayerColumn): number | null {
  const r = e.row;
  switch (column) {
    case 'shape':
      return e.layer.shape[0] * e.layer.shape[1];
    case 'bits':
      return r?.bitsPerWeight ?? null;
    case 'errorRtn':
      return r?.weightErrorRtn ?? null;
    case 'error':
      return r?.weightError ?? null;
    case 'outputError':
      return r?.outputError ?? null;
    case 'sqnr':
      return r ? (r.weightSqnrDb ?? Infinity) : null;
    case 'recovered':
      return r?.recovered ?? null;
    default:
      return null;
  }
}

/** Sorted copy; rows without a value for the column go last whatever the direction. */
export function sortEntries(entries: readonly TableEntry[], sort: SortState): TableEntry[] {
  const dir = sort.descending ? -1 : 1;
  const text = sort.column === 'name' || sort.column === 'role' || sort.column === 'dtype';
  return [...entries].sort((a, b) => {
    if (text) {
      const key = (e: TableEntry) =>
        sort.column === 'name' ? e.layer.name : sort.column === 'role' ? e.layer.role : e.layer.dtype;
      return dir * collator.compare(key(a), key(b)) || a.index - b.index;
    }
    const va = numeric(a, sort.column);
    const vb = numeric(b, sort.column);
    if (va === null && vb === null) return a.index - b.index;
    if (va === null) return 1;
    if (vb === null) return -1;
    return dir * (va - vb) || a.index - b.index;
  });
}

/**
 * Filter text: space-separated terms that must all match the name, role or dtype (case-insensitive);
 * a term in slashes is a regular expression ("/layers\.1[0-9]\./").
 */
export function matchesFilter(layer: LinearLayer, filter: string): boolean {
  const terms = filter.trim().split(/\s+/).filter(Boolean);
  const hay = `${layer.name} ${layer.role} ${layer.dtype}`;
  return terms.every((t) => {
    const re = /^\/(.+)\/$/.exec(t);
    if (re) {
      try {
        return new RegExp(re[1]!, 'i').test(hay);
      } catch {
        return false;
      }
    }
    return hay.toLowerCase().includes(t.toLowerCase());
  });
}

/** The next sort after a click on a column header: same column flips, a new one starts sensibly. */
export function nextSort(current: SortState, column: LayerColumn): SortState {
  if (current.column === column) return { column, descending: !current.descending };
  // Errors are most useful worst-first; names and SQNR ascending.
  const descendingFirst =
    column === 'error' || column === 'errorRtn' || column === 'outputError' || column === 'bits' || column === 'shape';
  return { column, descending: descendingFirst };
}

export { headlineError };
