/**
 * The layer panel's two charts: the singular values of E and of the method's scaled error (log
 * axis, normalised to the same Frobenius norm or raw), and the cumulative energy each captures
 * (with the share actually recovered by the quantized A and B). Datasets are built once per
 * analysis; a rank change only moves the marker, redrawn once per animation frame.
 */
import { isScaled } from '../../src/engine/methods/methods';
import type { LayerAnalysis } from '../../src/shared/protocol/layer';
import { applyTheme, createLineChart, lineDataset, setRankMarker, toXY, type LineChart, type XY } from '../lib/charts';
import { decimateMinMax } from '../lib/decimate';
import { cumulativeEnergy, normalizeSpectrum, recoveredCurve } from '../lib/spectra';
import { withAlpha, type ThemeColors } from '../lib/theme';

/** Points per series: about two per pixel column of a wide panel. */
const MAX_POINTS = 1200;

/** Zeros and negatives cannot sit on a log axis: leave a gap instead. */
function positiveOrGap(points: XY[]): XY[] {
  for (const p of points) if (!(p.y > 0)) p.y = NaN;
  return points;
}

export class SpectraCharts {
  private spectra: LineChart;
  private energy: LineChart;
  private analysis: LayerAnalysis | null = null;
  private raw = false;
  private rank = 0;
  private frame = 0;

  constructor(
    spectraCanvas: HTMLCanvasElement,
    energyCanvas: HTMLCanvasElement,
    private theme: ThemeColors,
  ) {
    this.spectra = createLineChart(spectraCanvas, theme, {
      xTitle: 'index i',
      yTitle: 'σᵢ / ‖E‖_F',
      logY: true,
      ariaLabel: 'Singular values of the quantization error before and after scaling',
    });
    this.energy = createLineChart(energyCanvas, theme, {
      xTitle: 'rank k',
      yTitle: 'captured energy',
      logY: false,
      yMin: 0,
      yMax: 1,
      percentY: true,
      ariaLabel: 'Cumulative share of the error energy captured by rank k',
    });
  }

  setAnalysis(a: LayerAnalysis, raw: boolean): void {
    this.analysis = a;
    this.raw = raw;
    this.rebuild();
  }

  setRaw(raw: boolean): void {
    this.raw = raw;
    this.rebuild();
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    applyTheme(this.spectra, theme);
    applyTheme(this.energy, theme);
    this.rebuild();
  }

  /** Moves the marker; the redraw happens on the next animation frame, once however many calls came. */
  setRank(k: number): void {
    this.rank = k;
    setRankMarker(this.spectra, k);
    setRankMarker(this.energy, k);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.spectra.draw();
      this.energy.draw();
    });
  }

  /** For the benchmark: whether a redraw is still pending. */
  get redrawPending(): boolean {
    return this.frame !== 0;
  }

  private rebuild(): void {
    const a = this.analysis;
    if (!a) return;
    const [c0, c1, c2] = this.theme.series;
    const same = !isScaled(a.method);
    // A partial result holds only the top values: energies are shares of the whole, which its norms
    // give, and the axes span the whole spectrum so that the part still coming shows as missing.
    const partial = a.preview?.spectra === true;
    const plainTotal = partial ? a.norms.errorSq : undefined;
    const scaledTotal = partial ? a.curves.objectiveIdealSq[0] : undefined;
    const plain = this.raw ? a.sigmaPlain : normalizeSpectrum(a.sigmaPlain, plainTotal);
    const scaled = this.raw ? a.sigmaScaled : normalizeSpectrum(a.sigmaScaled, scaledTotal);
    const count = partial ? Math.min(a.shape[0], a.shape[1]) : a.sigmaPlain.length;
    const sp = this.spectra;
    sp.data.datasets = [
      lineDataset('E = W − W_q (before scaling)', positiveOrGap(toXY(decimateMinMax(plain, MAX_POINTS, 1))), c0),
      lineDataset(
        same ? 'scaled error (same as E for this method)' : 'scaled error (after scaling)',
        positiveOrGap(toXY(decimateMinMax(scaled, MAX_POINTS, 1))),
        c1,
        same ? { borderDash: [5, 4] } : {},
      ),
    ];
    const sx = sp.options.scales?.x;
    if (sx) {
      sx.min = 1;
      sx.max = Math.max(2, count);
    }
    const yScale = sp.options.scales?.y;
    if (yScale?.title) yScale.title.text = this.raw ? 'σᵢ (raw)' : 'σᵢ / ‖σ‖₂ (same Frobenius norm)';
    const n = count;
    const en = this.energy;
    const datasets = [
      lineDataset(
        'E (before scaling)',
        toXY(decimateMinMax(cumulativeEnergy(a.sigmaPlain, plainTotal), MAX_POINTS)),
        c0,
      ),
      lineDataset(
        'scaled error, ideal A·B',
        toXY(decimateMinMax(cumulativeEnergy(a.sigmaScaled, scaledTotal), MAX_POINTS)),
        c1,
        { borderDash: same ? [5, 4] : [] },
      ),
    ];
    if (a.maxRank > 0) {
      datasets.push(
        // Drawn on top (lowest order): with 8-bit factors it often hides the ideal curve it sits on.
        lineDataset(
          'recovered with quantized A·B',
          toXY(decimateMinMax(recoveredCurve(a.curves.objectiveErrSq), MAX_POINTS)),
          c2,
          {
            borderWidth: 2.5,
            order: -1,
            backgroundColor: withAlpha(c2, 0.2),
          },
        ),
      );
    }
    en.data.datasets = datasets;
    const x = en.options.scales?.x;
    if (x) {
      x.min = 0;
      x.max = Math.max(1, n);
    }
    setRankMarker(sp, this.rank);
    setRankMarker(en, this.rank);
    sp.update('none');
    en.update('none');
    sp.canvas.dataset.partial = partial ? `top ${a.sigmaPlain.length} of ${count}` : '';
    // What was drawn, for tests and screen readers' curious users: points per series.
    sp.canvas.dataset.points = sp.data.datasets.map((d) => d.data.length).join(',');
    en.canvas.dataset.points = en.data.datasets.map((d) => d.data.length).join(',');
  }
}
