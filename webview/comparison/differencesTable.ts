/**
 * The comparison's per-layer table: sortable by any column (click or Enter on a header), verdicts at
 * the tolerance the view shows, a row selects its layer for the spectrum chart (click, Enter, or the
 * arrow keys).
 */
import type { ComparisonColumn, ComparisonView } from '../../src/shared/protocol/comparison';
import {
  differenceCells,
  nextComparisonSort,
  visibleDifferences,
  type DifferenceCells,
  type LayerDifference,
} from '../lib/checkpointDiff';
import { el, onActivate } from '../lib/dom';

const COLUMNS: { id: ComparisonColumn; key: keyof DifferenceCells; label: string; numeric: boolean; title: string }[] =
  [
    { id: 'name', key: 'name', label: 'Layer', numeric: false, title: 'the layer of W₁ (↔ its pair in W₂)' },
    { id: 'shape', key: 'shape', label: 'Shape [out×in]', numeric: true, title: 'sorted by size' },
    { id: 'relative', key: 'relative', label: '‖ΔW‖/‖W₁‖', numeric: true, title: 'ΔW = W₂ − W₁, Frobenius norms' },
    { id: 'maxAbs', key: 'maxAbs', label: 'max |ΔW|', numeric: true, title: 'the largest change of one weight' },
    { id: 'sigma1', key: 'sigma1', label: 'σ₁(ΔW)', numeric: true, title: 'the largest singular value of ΔW' },
    {
      id: 'rank90',
      key: 'rank90',
      label: 'Rank 90 %',
      numeric: true,
      title: 'the smallest k whose top-k singular values hold 90 % of ‖ΔW‖²',
    },
    {
      id: 'stableRank',
      key: 'stableRank',
      label: 'Stable rank',
      numeric: true,
      title: '‖ΔW‖²_F / σ₁²: how many directions the change spreads over',
    },
    { id: 'verdict', key: 'verdict', label: 'Verdict', numeric: false, title: 'at the tolerance above' },
  ];

export interface TableEvents {
  select(name: string): void;
  sort(sort: ComparisonView['sort']): void;
}

export class DifferencesTable {
  readonly element: HTMLElement;
  private readonly tbody = el('tbody');
  private readonly headers = new Map<ComparisonColumn, HTMLElement>();
  private view: ComparisonView | null = null;

  constructor(private readonly events: TableEvents) {
    const headRow = el('tr');
    for (const c of COLUMNS) {
      const th = el('th', {
        className: c.numeric ? 'num sortable' : 'sortable',
        text: c.label,
        title: c.title,
        attrs: { tabindex: '0', 'data-column': c.id, 'aria-sort': 'none' },
      });
      const activate = () => {
        if (this.view) this.events.sort(nextComparisonSort(this.view.sort, c.id));
      };
      onActivate(th, activate);
      this.headers.set(c.id, th);
      headRow.append(th);
    }
    this.tbody.addEventListener('keydown', (e: KeyboardEvent) => this.onKey(e));
    this.element = el(
      'div',
      { className: 'table-scroll' },
      el(
        'table',
        { id: 'differences', className: 'layers differences', attrs: { 'aria-label': 'Per-layer differences' } },
        el('thead', {}, headRow),
        this.tbody,
      ),
    );
  }

  /** Redraws the rows; `shownLayer` is the one the chart shows (highlighted). */
  render(layers: readonly LayerDifference[], view: ComparisonView, shownLayer: string | null): void {
    this.view = view;
    const focused = (document.activeElement as HTMLElement | null)?.dataset?.name;
    const rows = visibleDifferences(layers, view).map((d) => this.row(d, view.tolerance, d.name === shownLayer));
    this.tbody.replaceChildren(...rows);
    for (const [id, th] of this.headers) {
      th.setAttribute(
        'aria-sort',
        id === view.sort.column ? (view.sort.descending ? 'descending' : 'ascending') : 'none',
      );
    }
    if (focused) this.tbody.querySelector<HTMLElement>(`tr[data-name="${CSS.escape(focused)}"]`)?.focus();
  }

  private row(d: LayerDifference, tolerance: number, selected: boolean): HTMLTableRowElement {
    const cells = differenceCells(d, tolerance);
    const tr = el(
      'tr',
      {
        className: [`verdict-${cells.verdict}`, selected ? 'selected' : ''].filter(Boolean).join(' '),
        attrs: {
          tabindex: '0',
          'data-name': d.name,
          'data-verdict': cells.verdict,
          'aria-selected': String(selected),
        },
        ...(d.ropeUnpermuted ? { title: 'llama.cpp’s q/k row order was undone before subtracting' } : {}),
      },
      ...COLUMNS.map((c) =>
        el('td', {
          className: [c.numeric ? 'num' : '', c.id === 'name' ? 'name' : '', c.id === 'verdict' ? 'verdict-cell' : '']
            .filter(Boolean)
            .join(' '),
          text: cells[c.key],
        }),
      ),
    );
    tr.addEventListener('click', () => this.events.select(d.name));
    return tr;
  }

  private onKey(e: KeyboardEvent): void {
    const row = (e.target as HTMLElement).closest('tr');
    if (!row?.dataset.name) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.events.select(row.dataset.name);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = (e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
      if (next?.dataset.name) {
        next.focus();
        this.events.select(next.dataset.name);
      }
    }
  }
}
