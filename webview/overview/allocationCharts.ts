/**
 * The rank allocation's two charts: the rank (colour: format) per layer beside the uniform rank at
 * the same budget, and the objective against bits per weight for uniform ranks and the allocation
 * at their budgets, with a marker at the budget shown.
 */
import type { AllocationResult } from '../../src/engine/methods/allocation';
import { allocationFormatLabel } from '../../src/shared/allocation';
import type { AllocationCurves, AllocationGoal } from '../../src/shared/protocol/overview';
import { budgetInBoth, rankSeries, tradeoffCurve } from '../lib/allocationModel';
import {
  applyBarTheme,
  applyTheme,
  createBarChart,
  createLineChart,
  lineDataset,
  setRankMarker,
  type BarChart,
  type LineChart,
} from '../lib/charts';
import { el } from '../lib/dom';
import { withAlpha, type ThemeColors } from '../lib/theme';

export class AllocationCharts {
  readonly rankCanvas = el('canvas', { id: 'allocation-chart' });
  readonly tradeoffCanvas = el('canvas', { id: 'allocation-tradeoff' });
  private rankChart: BarChart | null = null;
  private tradeoffChart: LineChart | null = null;

  constructor(private theme: ThemeColors) {}

  /** New colours; the caller draws again. */
  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    if (this.rankChart) applyBarTheme(this.rankChart, theme);
    if (this.tradeoffChart) applyTheme(this.tradeoffChart, theme);
  }

  /** Draws the allocation `r` of `curves` at `view`; `tradeoff`: recompute the trade-off curve too. */
  render(curves: AllocationCurves, r: AllocationResult, view: AllocationGoal, tradeoff: boolean): void {
    const series = rankSeries(curves.layers, r);
    const [c0, c1, c2, c3] = this.theme.series;
    const palette = [c0, c1, c2, c3];
    const colourOf = new Map(series.formatCounts.map((f, i) => [f.format, palette[i % palette.length]!]));
    this.rankChart ??= createBarChart(this.rankCanvas, this.theme, {
      xTitle: 'layer',
      yTitle: 'rank k',
      yMin: 0,
      ariaLabel: 'Rank per layer chosen by the allocation, beside the uniform rank at the same budget',
    });
    const chart = this.rankChart;
    chart.data.labels = series.labels;
    const several = series.formatCounts.length > 1;
    chart.data.datasets = [
      {
        label: several ? 'allocated rank (colour: format)' : 'allocated rank',
        data: series.allocated,
        backgroundColor: series.formats.map((f) => colourOf.get(f) ?? c0),
        // A fused group's bars are outlined: its layers share one format.
        borderColor: series.formats.map((f, i) => (series.groups[i] ? this.theme.foreground : (colourOf.get(f) ?? c0))),
        borderWidth: series.groups.map((g) => (g ? 2 : 1)),
      },
      ...(series.uniform
        ? [
            {
              label: `uniform rank ${series.uniform[0] ?? 0}${several ? ` (${allocationFormatLabel(series.uniformFormat ?? '')})` : ''}`,
              data: series.uniform,
              backgroundColor: withAlpha(this.theme.muted, 0.25),
              borderColor: this.theme.muted,
              borderWidth: 1,
            },
          ]
        : []),
    ];
    const legend = chart.options.plugins?.legend?.labels;
    if (legend) {
      legend.generateLabels = () => [
        ...series.formatCounts
          .filter((f) => !several || f.layers > 0)
          .map((f) => ({
            text: several ? `${f.label}: ${f.layers} layer${f.layers === 1 ? '' : 's'}` : `allocated rank (${f.label})`,
            fillStyle: colourOf.get(f.format) ?? c0,
            strokeStyle: colourOf.get(f.format) ?? c0,
            fontColor: this.theme.foreground,
            lineWidth: 1,
            hidden: false,
            datasetIndex: 0,
          })),
        ...(series.uniform
          ? [
              {
                text: `uniform rank ${series.uniform[0] ?? 0} at the same budget`,
                fillStyle: withAlpha(this.theme.muted, 0.25),
                strokeStyle: this.theme.muted,
                fontColor: this.theme.foreground,
                lineWidth: 1,
                hidden: false,
                datasetIndex: 1,
              },
            ]
          : []),
        ...(series.groups.some((g) => g)
          ? [
              {
                text: `outlined: ${new Set(series.groups.filter((g) => g)).size} fused groups, one format each`,
                fillStyle: 'rgba(0,0,0,0)',
                strokeStyle: this.theme.foreground,
                fontColor: this.theme.foreground,
                lineWidth: 2,
                hidden: false,
                datasetIndex: 0,
              },
            ]
          : []),
      ];
    }
    const tooltip = chart.options.plugins?.tooltip;
    if (tooltip) {
      tooltip.callbacks = {
        title: (items) => series.names[items[0]?.dataIndex ?? 0] ?? '',
        label: (item) =>
          item.datasetIndex === 0
            ? `allocated: rank ${series.allocated[item.dataIndex]} · ${allocationFormatLabel(series.formats[item.dataIndex] ?? '')}${series.groups[item.dataIndex] ? ` · fused group: ${series.groups[item.dataIndex]}` : ''}`
            : `uniform: rank ${series.uniform?.[item.dataIndex] ?? 0}`,
      };
    }
    chart.update('none');
    this.rankCanvas.dataset.ranks = series.allocated.join(',');
    this.rankCanvas.dataset.formats = series.formats.join(',');
    this.rankCanvas.dataset.uniform = series.uniform?.join(',') ?? '';
    this.rankCanvas.dataset.groups = series.groups.map((g) => g ?? '').join('|');

    this.tradeoffChart ??= createLineChart(this.tradeoffCanvas, this.theme, {
      xTitle: 'bits per weight (A·B included)',
      yTitle: 'objective',
      logY: true,
      ariaLabel: 'Objective against bits per weight, uniform ranks and allocated at the same budgets',
    });
    const t = this.tradeoffChart;
    if (tradeoff || t.data.datasets.length === 0) {
      const { uniform, format } = tradeoffCurve(curves, view);
      const gap = (y: number) => (y > 0 ? y : NaN);
      t.data.datasets = [
        lineDataset(
          `uniform rank k (${allocationFormatLabel(format)})`,
          uniform.map((p) => ({ x: p.bitsPerWeight, y: gap(p.uniform) })),
          this.theme.muted,
          { pointRadius: 2, borderDash: [5, 4] },
        ),
        lineDataset(
          'allocated at the same budget',
          uniform.map((p) => ({ x: p.bitsPerWeight, y: gap(p.allocated) })),
          c0,
          { pointRadius: 2 },
        ),
      ];
      const x = t.options.scales?.x;
      if (x && uniform.length) {
        x.min = Math.min(...uniform.map((p) => p.bitsPerWeight));
        x.max = Math.max(...uniform.map((p) => p.bitsPerWeight));
      }
      const y = t.options.scales?.y;
      if (y?.title) y.title.text = `objective: ${view.objective}`;
    }
    setRankMarker(t, budgetInBoth(curves.layers, view.budget).bitsPerWeight, 'budget');
    t.update('none');
  }
}
