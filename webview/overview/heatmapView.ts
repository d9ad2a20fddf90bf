/**
 * The heatmap of blocks × layer roles, drawn on a canvas in theme colours: each cell coloured by
 * its error (log scale between the best and worst analysed layer), empty cells for layers not yet
 * analysed. Clicking a cell opens that layer; hovering tells which layer and error it is.
 */
import type { LinearLayer } from '../../src/shared/checkpointSummary';
import { errorDomain, errorPosition } from '../../src/shared/errorScale';
import { formatPercent } from '../../src/shared/formatting';
import { el, setText } from '../lib/dom';
import { cellAt, heatmapGrid, heatmapValues, type HeatmapGrid } from '../lib/heatmap';
import { errorColor, type ThemeColors } from '../lib/theme';

const CELL_HEIGHT = 20;
const LABEL_WIDTH = 110;
const HEADER_HEIGHT = 18;
const MIN_CELL = 6;
const MAX_CELL = 56;

export class HeatmapView {
  private grid: HeatmapGrid | null = null;
  private values: Float64Array = new Float64Array(0);
  private readonly canvas = el('canvas', { id: 'heatmap', attrs: { role: 'img', tabindex: '0' } });
  private readonly hover = el('p', { className: 'caption', id: 'heatmap-hover', attrs: { 'aria-live': 'polite' } });
  private readonly legend = el('p', { className: 'caption', id: 'heatmap-legend' });
  readonly element = el(
    'section',
    { id: 'heatmap-section', attrs: { 'aria-labelledby': 'heatmap-title' } },
    el('h2', { id: 'heatmap-title', text: 'Error by block and layer' }),
    this.legend,
    el('div', { className: 'heatmap-box' }, this.canvas),
    this.hover,
  );
  private layout = { left: LABEL_WIDTH, top: HEADER_HEIGHT, cellWidth: 20, cellHeight: CELL_HEIGHT, rows: 0, cols: 0 };
  private labelOf: (name: string) => string = (n) => n;

  constructor(
    private theme: ThemeColors,
    private readonly onOpen: (layer: string) => void,
  ) {
    this.element.hidden = true;
    this.canvas.addEventListener('click', (e) => {
      const names = this.namesAt(e);
      if (names?.[0]) this.onOpen(names[0]);
    });
    this.canvas.addEventListener('mousemove', (e) => {
      const names = this.namesAt(e);
      setText(
        this.hover,
        names?.length ? names.map((n) => `${this.labelOf(n)}: ${formatPercent(this.valueFor(n))}`).join(' · ') : '',
      );
    });
    new ResizeObserver(() => this.draw()).observe(this.element);
  }

  private valueByName = new Map<string, number>();

  private valueFor(name: string): number | null {
    return this.valueByName.get(name) ?? null;
  }

  setLayers(layers: readonly LinearLayer[]): void {
    this.grid = heatmapGrid(layers);
    this.element.hidden = this.grid === null;
    this.canvas.setAttribute(
      'aria-label',
      this.grid
        ? `Heatmap of ${this.grid.blocks.length} blocks by ${this.grid.roles.length} layer roles, coloured by error`
        : 'No blocks',
    );
    this.draw();
  }

  setValues(values: Map<string, number>, what: string, labelOf: (name: string) => string): void {
    this.valueByName = values;
    this.labelOf = labelOf;
    if (!this.grid) return;
    this.values = heatmapValues(this.grid, (n) => values.get(n));
    const domain = errorDomain(values.values());
    setText(
      this.legend,
      domain
        ? `${what}: green ${formatPercent(domain.min)} … red ${formatPercent(domain.max)} (log scale); grey: not analysed yet. Click a cell to inspect the layer.`
        : `${what} once layers are analysed (Analyze All). Click a cell to inspect the layer.`,
    );
    this.draw();
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    this.draw();
  }

  private namesAt(e: MouseEvent): string[] | null {
    if (!this.grid) return null;
    const r = this.canvas.getBoundingClientRect();
    const cell = cellAt(e.clientX - r.left, e.clientY - r.top, this.layout);
    return cell ? this.grid.cells[cell.row]![cell.col]! : null;
  }

  private draw(): void {
    const g = this.grid;
    if (!g || this.element.hidden) return;
    const available = Math.max(200, this.element.clientWidth - 4);
    const cols = g.blocks.length;
    const rows = g.roles.length;
    const cellWidth = Math.max(MIN_CELL, Math.min(MAX_CELL, Math.floor((available - LABEL_WIDTH) / cols)));
    this.layout = { left: LABEL_WIDTH, top: HEADER_HEIGHT, cellWidth, cellHeight: CELL_HEIGHT, rows, cols };
    const width = LABEL_WIDTH + cols * cellWidth;
    const height = HEADER_HEIGHT + rows * CELL_HEIGHT;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    // CSSOM sizing (allowed under the CSP, unlike style attributes) keeps the canvas sharp on HiDPI.
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = `11px ${this.theme.font}`;
    ctx.textBaseline = 'middle';
    const domain = errorDomain(this.values);
    const labelEvery = Math.ceil(24 / cellWidth);
    ctx.fillStyle = this.theme.muted;
    ctx.textAlign = 'center';
    g.blocks.forEach((b, j) => {
      if (j % labelEvery === 0) ctx.fillText(String(b), LABEL_WIDTH + (j + 0.5) * cellWidth, HEADER_HEIGHT / 2);
    });
    ctx.textAlign = 'right';
    g.roles.forEach((role, i) => {
      ctx.fillStyle = this.theme.foreground;
      ctx.fillText(
        role.length > 16 ? `${role.slice(0, 15)}…` : role,
        LABEL_WIDTH - 6,
        HEADER_HEIGHT + (i + 0.5) * CELL_HEIGHT,
      );
      for (let j = 0; j < cols; j++) {
        const v = this.values[i * cols + j];
        const hasLayer = g.cells[i]![j]!.length > 0;
        if (!hasLayer) continue;
        const x = LABEL_WIDTH + j * cellWidth + 1;
        const y = HEADER_HEIGHT + i * CELL_HEIGHT + 1;
        if (v !== undefined && Number.isFinite(v) && domain) {
          ctx.fillStyle = errorColor(this.theme, errorPosition(v, domain));
          ctx.fillRect(x, y, cellWidth - 2, CELL_HEIGHT - 2);
        } else {
          // Not analysed yet: an outlined cell, visible in light and dark themes alike.
          ctx.fillStyle = this.theme.empty;
          ctx.fillRect(x, y, cellWidth - 2, CELL_HEIGHT - 2);
          ctx.strokeStyle = this.theme.grid;
          ctx.strokeRect(x + 0.5, y + 0.5, cellWidth - 3, CELL_HEIGHT - 3);
        }
      }
    });
  }
}
