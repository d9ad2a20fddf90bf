/**
 * Chart.js, with only the pieces the panels use registered, themed from the VS Code theme, and a
 * rank marker that moves without re-laying out the chart (the slider redraws, it never updates).
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  LogarithmicScale,
  PointElement,
  Tooltip,
  type ChartDataset,
  type Plugin,
  type Scale,
} from 'chart.js';
import type { Points } from './decimate';
import type { ThemeColors } from './theme';

Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Tooltip, Legend);
Chart.register(BarController, BarElement, CategoryScale);

export type XY = { x: number; y: number };
export type LineChart = Chart<'line', XY[]>;

/** The rank each chart marks, read at draw time so moving it needs only chart.draw(). */
const markers = new WeakMap<Chart, { value: number | null; label: string }>();
let markerColor = '#cccccc';

const rankMarker: Plugin<'line'> = {
  id: 'quantLensRankMarker',
  afterDatasetsDraw(chart) {
    const m = markers.get(chart);
    if (!m || m.value === null) return;
    const x = chart.scales.x;
    if (!x || m.value < x.min || m.value > x.max) return;
    const px = x.getPixelForValue(m.value);
    const { top, bottom } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save();
    ctx.strokeStyle = markerColor;
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(px, top);
    ctx.lineTo(px, bottom);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = markerColor;
    ctx.textAlign = px > (chart.chartArea.left + chart.chartArea.right) / 2 ? 'right' : 'left';
    ctx.fillText(m.label, px + (ctx.textAlign === 'right' ? -4 : 4), top + 10);
    ctx.restore();
  },
};
Chart.register(rankMarker);

export function toXY(p: Points): XY[] {
  const out: XY[] = new Array(p.x.length);
  for (let i = 0; i < p.x.length; i++) out[i] = { x: p.x[i]!, y: p.y[i]! };
  return out;
}

export interface LineChartOptions {
  xTitle: string;
  yTitle: string;
  logY: boolean;
  yMin?: number;
  yMax?: number;
  xMin?: number;
  xMax?: number;
  percentY?: boolean;
  ariaLabel: string;
}

let gridColor = 'rgba(128, 128, 128, 0.3)';

/**
 * Grid lines only where a tick is labelled: a log axis has a tick at every 2…9 × 10ⁿ, and a line
 * for each of them buries the data.
 */
function gridLineColor(ctx: { tick?: { label?: unknown } }): string {
  const label = ctx.tick?.label;
  return label === '' || (Array.isArray(label) && label.length === 0) ? 'transparent' : gridColor;
}

function axisStyle(theme: ThemeColors) {
  gridColor = theme.grid;
  return {
    grid: { color: gridLineColor },
    border: { color: theme.grid },
    ticks: { color: theme.muted, font: { family: theme.font } },
    title: { display: true, color: theme.muted, font: { family: theme.font } },
  };
}

/**
 * Log-axis ticks: 1, 10, 100… only, plus 2 and 5 between them when the axis spans under two
 * decades (an LQER spectrum often lies within one, and would otherwise get a single label).
 */
function logTick(this: Scale, value: string | number): string {
  const v = Number(value);
  if (!(v > 0)) return '';
  const mantissa = v / 10 ** Math.floor(Math.log10(v) + 1e-9);
  const narrow = this.max > 0 && this.min > 0 && Math.log10(this.max / this.min) < 2;
  const shown = [1, ...(narrow ? [2, 5] : [])];
  if (!shown.some((m) => Math.abs(mantissa - m) < 1e-6)) return '';
  return v >= 0.001 && v < 1e4 ? String(Number(v.toPrecision(1))) : v.toExponential(0);
}

export function createLineChart(canvas: HTMLCanvasElement, theme: ThemeColors, o: LineChartOptions): LineChart {
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', o.ariaLabel);
  markerColor = theme.marker;
  const style = axisStyle(theme);
  const chart: LineChart = new Chart(canvas, {
    type: 'line',
    data: { datasets: [] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      elements: { point: { radius: 0, hoverRadius: 3 }, line: { borderWidth: 1.5, tension: 0 } },
      scales: {
        x: {
          type: 'linear',
          ...style,
          title: { ...style.title, text: o.xTitle },
          ...(o.xMin !== undefined ? { min: o.xMin } : {}),
          ...(o.xMax !== undefined ? { max: o.xMax } : {}),
        },
        y: {
          type: o.logY ? 'logarithmic' : 'linear',
          ...style,
          title: { ...style.title, text: o.yTitle },
          ...(o.yMin !== undefined ? { min: o.yMin } : {}),
          ...(o.yMax !== undefined ? { max: o.yMax } : {}),
          ...(o.percentY
            ? { ticks: { ...style.ticks, callback: (v: string | number) => `${Math.round(Number(v) * 100)} %` } }
            : o.logY
              ? { ticks: { ...style.ticks, autoSkip: false, callback: logTick } }
              : {}),
        },
      },
      plugins: {
        legend: { labels: { color: theme.foreground, font: { family: theme.font }, boxWidth: 12, boxHeight: 2 } },
        tooltip: { enabled: true },
      },
    },
  });
  return chart;
}

/** Re-applies the theme's colours to an existing chart (after a theme switch). */
export function applyTheme(chart: LineChart, theme: ThemeColors): void {
  markerColor = theme.marker;
  restyle(chart, theme);
}

function restyle(chart: LineChart | BarChart, theme: ThemeColors): void {
  const style = axisStyle(theme);
  for (const id of ['x', 'y'] as const) {
    const s = chart.options.scales?.[id];
    if (!s) continue;
    Object.assign(s, { grid: style.grid, border: style.border });
    if (s.ticks) Object.assign(s.ticks, { color: theme.muted });
    if (s.title) Object.assign(s.title, { color: theme.muted });
  }
  const legend = chart.options.plugins?.legend?.labels;
  if (legend) legend.color = theme.foreground;
  chart.update('none');
}

export function setRankMarker(chart: Chart, value: number | null, label = value === null ? '' : `k = ${value}`): void {
  markers.set(chart, { value, label });
}

export function lineDataset(
  label: string,
  data: XY[],
  color: string,
  extra: Partial<ChartDataset<'line', XY[]>> = {},
): ChartDataset<'line', XY[]> {
  return { label, data, borderColor: color, backgroundColor: color, pointRadius: 0, ...extra };
}

export type BarChart = Chart<'bar', (number | null)[], string>;

export interface BarChartOptions {
  xTitle: string;
  yTitle: string;
  ariaLabel: string;
  yMin?: number;
}

/** A bar chart over categories (layers), themed like the line charts. */
export function createBarChart(canvas: HTMLCanvasElement, theme: ThemeColors, o: BarChartOptions): BarChart {
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', o.ariaLabel);
  const style = axisStyle(theme);
  return new Chart(canvas, {
    type: 'bar',
    data: { labels: [], datasets: [] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: {
          type: 'category',
          ...style,
          ticks: { ...style.ticks, autoSkip: true, maxRotation: 60, minRotation: 0 },
          title: { ...style.title, text: o.xTitle },
        },
        y: {
          type: 'linear',
          ...style,
          ...(o.yMin !== undefined ? { min: o.yMin } : {}),
          title: { ...style.title, text: o.yTitle },
        },
      },
      plugins: {
        legend: { labels: { color: theme.foreground, font: { family: theme.font }, boxWidth: 12 } },
        tooltip: { enabled: true },
      },
    },
  });
}

/** Re-applies the theme's colours to a bar chart (after a theme switch). */
export function applyBarTheme(chart: BarChart, theme: ThemeColors): void {
  restyle(chart, theme);
}
