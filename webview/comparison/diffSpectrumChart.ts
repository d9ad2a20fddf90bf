/**
 * The singular values of one layer's ΔW = W₂ − W₁ (log axis, raw values), with a marker at the rank
 * that holds 90 % of ‖ΔW‖²: a low-rank update (a LoRA merged in, a few fine-tuned directions)
 * drops off after its rank, rounding noise stays flat.
 */
import type { LayerDifference } from '../lib/checkpointDiff';
import { applyTheme, createLineChart, lineDataset, setRankMarker, toXY, type LineChart } from '../lib/charts';
import { decimateMinMax } from '../lib/decimate';
import { el, setText } from '../lib/dom';
import type { ThemeColors } from '../lib/theme';

const MAX_POINTS = 1200;

export class DiffSpectrumChart {
  readonly element: HTMLElement;
  private readonly canvas = el('canvas', { id: 'diff-spectrum' });
  private readonly caption = el('p', { id: 'diff-spectrum-caption', className: 'caption' });
  private readonly title = el('h2', { id: 'diff-spectrum-title', text: 'Spectrum of ΔW' });
  private readonly chart: LineChart;
  private layer: LayerDifference | null = null;

  constructor(private theme: ThemeColors) {
    this.element = el(
      'section',
      { id: 'spectrum', attrs: { 'aria-labelledby': 'diff-spectrum-title' } },
      this.title,
      this.caption,
      el('div', { className: 'chart-box' }, this.canvas),
    );
    this.chart = createLineChart(this.canvas, theme, {
      xTitle: 'index i',
      yTitle: 'σᵢ(ΔW)',
      logY: true,
      ariaLabel: 'Singular values of the difference W₂ − W₁ of the selected layer',
    });
  }

  show(d: LayerDifference | null): void {
    this.layer = d;
    this.element.hidden = d === null;
    if (!d) return;
    setText(this.title, `Spectrum of ΔW: ${d.name}`);
    const positive = Array.from(d.sigma).filter((s) => s > 0).length;
    this.canvas.dataset.layer = d.name;
    this.canvas.dataset.points = String(positive);
    this.canvas.dataset.rank90 = d.rank90 === null ? '' : String(d.rank90);
    if (d.diffNorm === 0) {
      setText(this.caption, 'ΔW = 0: the two checkpoints hold the same weights here; there is no spectrum to draw.');
    } else if (d.sigma.length === 0) {
      setText(this.caption, 'The spectrum was not computed for this layer.');
    } else {
      const full = Math.min(d.shape[0], d.shape[1]);
      setText(
        this.caption,
        `All ${d.sigma.length} singular values of W₂ − W₁ (${d.shape[0]}×${d.shape[1]}). 90 % of ‖ΔW‖² lies in the top ${d.rank90} of ${full}${d.stableRank !== null ? `; stable rank ${d.stableRank.toFixed(2)}` : ''}. A change of low rank drops off after its rank; noise such as rounding stays flat.`,
      );
    }
    this.rebuild();
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    applyTheme(this.chart, theme);
    this.rebuild();
  }

  private rebuild(): void {
    const d = this.layer;
    const points = d && d.diffNorm > 0 ? toXY(decimateMinMax(d.sigma, MAX_POINTS, 1)) : [];
    // Zeros cannot sit on a log axis: a gap instead.
    for (const p of points) if (!(p.y > 0)) p.y = NaN;
    this.chart.data.datasets = [lineDataset('σᵢ(W₂ − W₁)', points, this.theme.series[0])];
    const x = this.chart.options.scales?.x;
    if (x) {
      x.min = 1;
      x.max = Math.max(2, d?.sigma.length ?? 2);
    }
    setRankMarker(this.chart, d && d.diffNorm > 0 ? d.rank90 : null, d?.rank90 ? `90 % at k = ${d.rank90}` : '');
    this.chart.update('none');
  }
}
