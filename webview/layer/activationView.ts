/**
 * The activation view (with calibration): each input channel's activation statistic and the scale
 * the method derived from it, relative to their medians on a log axis, and the outlier channels —
 * the few channels with huge activations are why scaling the error (L²QER, QERA) pays off.
 */
import type { LayerAnalysis } from '../../src/shared/protocol/layer';
import { applyTheme, createLineChart, lineDataset, toXY, type LineChart } from '../lib/charts';
import { decimateMax } from '../lib/decimate';
import { el, setText } from '../lib/dom';
import { outlierChannels, relativeToMedian } from '../lib/spectra';
import type { ThemeColors } from '../lib/theme';

const MAX_POINTS = 800;

export class ActivationView {
  private chart: LineChart | null = null;
  private readonly canvas = el('canvas', { id: 'activation-chart' });
  private readonly caption = el('p', { className: 'caption', id: 'activation-caption' });
  private readonly outliers = el('ol', { className: 'outliers', id: 'activation-outliers' });
  readonly element = el(
    'section',
    { id: 'activation', className: 'activation', attrs: { 'aria-labelledby': 'activation-title' } },
    el('h2', { id: 'activation-title', text: 'Activation scale per input channel' }),
    this.caption,
    el('div', { className: 'chart-box small' }, this.canvas),
    this.outliers,
  );

  constructor(private theme: ThemeColors) {
    this.element.hidden = true;
  }

  private shown: LayerAnalysis | null = null;

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    if (this.chart) applyTheme(this.chart, theme);
    // The series colours come from the theme too: draw them again.
    if (this.shown && !this.element.hidden) this.show(this.shown);
  }

  show(a: LayerAnalysis): void {
    this.shown = a;
    const stat = a.activation.meanAbs ?? a.activation.rms;
    if (!stat) {
      this.element.hidden = true;
      return;
    }
    this.element.hidden = false;
    const statName = a.activation.meanAbs ? 'mean |x|' : 'RMS of x';
    this.chart ??= createLineChart(this.canvas, this.theme, {
      xTitle: 'input channel',
      yTitle: 'relative to median',
      logY: true,
      ariaLabel: 'Per-input-channel activation scale relative to its median',
    });
    const [c0, c1] = this.theme.series;
    const datasets = [
      lineDataset(`${statName} (max per pixel)`, toXY(decimateMax(relativeToMedian(stat), MAX_POINTS)), c0),
    ];
    if (a.scale)
      datasets.push(
        lineDataset(`scale s used by the method`, toXY(decimateMax(relativeToMedian(a.scale), MAX_POINTS)), c1, {
          borderDash: [5, 4],
        }),
      );
    this.chart.data.datasets = datasets;
    const x = this.chart.options.scales?.x;
    if (x) {
      x.min = 0;
      x.max = Math.max(1, stat.length - 1);
    }
    this.chart.update('none');
    const { outliers, count } = outlierChannels(stat);
    const tokens = a.activation.tokens ? ` over ${a.activation.tokens.toLocaleString('en')} tokens` : '';
    setText(
      this.caption,
      count
        ? `${count} of ${stat.length} channels have a ${statName} at least 5× the median${tokens}; the largest:`
        : `No channel has a ${statName} 5× above the median${tokens}: scaling matters little here.`,
    );
    this.outliers.replaceChildren(
      ...outliers.map((o) =>
        el('li', { text: `channel ${o.channel}: ${o.value.toPrecision(3)} (${o.ratio.toFixed(1)}× median)` }),
      ),
    );
  }

  hide(): void {
    this.element.hidden = true;
  }
}
