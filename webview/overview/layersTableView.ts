/**
 * The linear-layer table: sortable by any column (click or Enter on a header), filterable (terms,
 * or /regex/), with each layer's results filled in as they arrive. A row opens the layer panel on
 * click or Enter; arrow keys move between rows.
 */
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { VscodeTextfield } from '@vscode-elements/elements/dist/vscode-textfield/vscode-textfield.js';
import type { LinearLayer } from '../../src/shared/checkpointSummary';
import { formatBits, formatDb, formatPercent } from '../../src/shared/formatting';
import type { LayerFailureRow, LayerResultRow } from '../../src/shared/protocol/overview';
import { el, setText, onActivate } from '../lib/dom';
import {
  matchesFilter,
  nextSort,
  sortEntries,
  type LayerColumn,
  type SortState,
  type TableEntry,
} from '../lib/layerTable';

const COLUMNS: { id: LayerColumn; label: string; numeric: boolean; title?: string }[] = [
  { id: 'name', label: 'Layer', numeric: false },
  { id: 'role', label: 'Role', numeric: false },
  { id: 'shape', label: 'Shape [out×in]', numeric: true },
  { id: 'dtype', label: 'Dtype', numeric: false },
  { id: 'bits', label: 'Bits/w', numeric: true, title: 'bits per weight, A and B included' },
  { id: 'errorRtn', label: 'W err (RTN)', numeric: true, title: '‖W − W_q‖/‖W‖ before any correction' },
  { id: 'error', label: 'W err (k)', numeric: true, title: '‖W − Ŵ‖/‖W‖ at the current rank' },
  { id: 'outputError', label: 'Out err', numeric: true, title: 'relative output error (needs calibration)' },
  { id: 'sqnr', label: 'SQNR', numeric: true, title: 'weight SQNR at the current rank' },
  { id: 'recovered', label: 'Recovered', numeric: true, title: 'share of the error energy the correction removes' },
];

export class LayersTableView {
  private layers: readonly LinearLayer[] = [];
  private rows = new Map<string, LayerResultRow>();
  private failures = new Map<string, LayerFailureRow>();
  private sort: SortState = { column: 'name', descending: false };
  private readonly filter: VscodeTextfield;
  private readonly tbody = el('tbody');
  private readonly rowElements = new Map<string, HTMLTableRowElement>();
  private readonly headers = new Map<LayerColumn, HTMLElement>();
  private readonly count = el('span', { className: 'muted', id: 'layer-count' });
  readonly element: HTMLElement;

  constructor(private readonly onOpen: (layer: string) => void) {
    this.filter = el('vscode-textfield', {
      id: 'layer-filter',
      attrs: { placeholder: 'Filter layers (words or /regex/)', 'aria-label': 'Filter layers' },
    });
    this.filter.addEventListener('input', () => this.render());
    const headRow = el('tr');
    for (const c of COLUMNS) {
      const th = el('th', {
        className: c.numeric ? 'num sortable' : 'sortable',
        text: c.label,
        ...(c.title ? { title: c.title } : {}),
        attrs: { tabindex: '0', 'data-column': c.id, 'aria-sort': 'none' },
      });
      const activate = () => {
        this.sort = nextSort(this.sort, c.id);
        this.render();
      };
      onActivate(th, activate);
      this.headers.set(c.id, th);
      headRow.append(th);
    }
    this.tbody.addEventListener('keydown', (e: KeyboardEvent) => this.onKey(e));
    this.element = el(
      'section',
      { id: 'layers-section', attrs: { 'aria-labelledby': 'layers-title' } },
      el('div', { className: 'section-head' }, el('h2', { id: 'layers-title', text: 'Linear layers' }), this.count),
      this.filter,
      el(
        'div',
        { className: 'table-scroll' },
        el(
          'table',
          { className: 'layers', attrs: { 'aria-label': 'Linear layers' } },
          el('thead', {}, headRow),
          this.tbody,
        ),
      ),
    );
  }

  setLayers(layers: readonly LinearLayer[]): void {
    if (layers !== this.layers) this.rowElements.clear();
    this.layers = layers;
    this.render();
  }

  setResults(rows: readonly LayerResultRow[], failures: readonly LayerFailureRow[]): void {
    this.rows = new Map(rows.map((r) => [r.name, r]));
    this.failures = new Map(failures.map((f) => [f.name, f]));
    this.render();
  }

  private render(): void {
    const query = this.filter.value ?? '';
    const entries: TableEntry[] = this.layers.map((layer, index) => ({ layer, index, row: this.rows.get(layer.name) }));
    const visible = sortEntries(
      entries.filter((e) => matchesFilter(e.layer, query)),
      this.sort,
    );
    // Rows are kept and patched in place, and reordered only when the order changes: results arrive
    // many times a second during Analyze All, and rebuilding every row each time detached the row
    // under the pointer (a click in that instant was lost; keyboard focus and hover were reset).
    const wanted = visible.map((e) => this.rowFor(e));
    const current = Array.from(this.tbody.children);
    if (wanted.length !== current.length || wanted.some((tr, i) => tr !== current[i])) {
      const focused = document.activeElement;
      this.tbody.replaceChildren(...wanted);
      if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) focused.focus();
    }
    for (const [id, th] of this.headers) {
      th.setAttribute(
        'aria-sort',
        id === this.sort.column ? (this.sort.descending ? 'descending' : 'ascending') : 'none',
      );
    }
    setText(
      this.count,
      `${visible.length === this.layers.length ? '' : `${visible.length} of `}${this.layers.length} · ${this.rows.size} analysed${this.failures.size ? ` · ${this.failures.size} failed` : ''}`,
    );
  }

  /** The layer's row, created once and brought up to date with its results. */
  private rowFor(e: TableEntry): HTMLTableRowElement {
    const l = e.layer;
    const r = e.row;
    const f = this.failures.get(l.name);
    const texts = [
      l.name,
      l.role,
      `${l.shape[0]}×${l.shape[1]}`,
      l.dtype,
      r ? formatBits(r.bitsPerWeight) : '',
      r ? formatPercent(r.weightErrorRtn) : '',
      r ? formatPercent(r.weightError) : f ? 'failed' : '',
      r ? formatPercent(r.outputError) + (r.outputErrorEstimated ? '*' : '') : '',
      r ? formatDb(r.weightSqnrDb) : '',
      r ? formatPercent(r.recovered, 1) : '',
    ];
    let tr = this.rowElements.get(l.name);
    if (!tr) {
      tr = el(
        'tr',
        { attrs: { tabindex: '0', 'data-name': l.name } },
        ...COLUMNS.map((c, i) =>
          el('td', { className: [c.numeric ? 'num' : '', i === 0 ? 'name' : ''].filter(Boolean).join(' ') }),
        ),
      );
      tr.addEventListener('click', () => this.onOpen(l.name));
      this.rowElements.set(l.name, tr);
    }
    const className = [r ? 'analysed' : '', f ? 'failed' : '', l.quantizedByDefault ? '' : 'not-default']
      .filter(Boolean)
      .join(' ');
    if (tr.className !== className) tr.className = className;
    const title = f ? f.error.message : l.quantizedByDefault ? '' : 'not quantized by default (embedding, head, …)';
    if (tr.title !== title) tr.title = title;
    texts.forEach((text, i) => {
      const td = tr.children[i];
      if (td && td.textContent !== text) td.textContent = text;
    });
    return tr;
  }

  private onKey(e: KeyboardEvent): void {
    const row = (e.target as HTMLElement).closest('tr');
    if (!row) return;
    if (e.key === 'Enter') {
      e.preventDefault();
      if (row.dataset.name) this.onOpen(row.dataset.name);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = (e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
      next?.focus();
    }
  }
}
