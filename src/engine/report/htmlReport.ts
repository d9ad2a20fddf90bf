/**
 * A self-contained HTML report of an analysis run: settings, totals, the per-layer table, and for
 * each layer its two error spectra and its error-versus-rank curves as inline SVG. No script and no
 * external resource, so it opens anywhere and can be attached to a ticket.
 */
import type { LayerAnalysis } from '../methods/analyzeLayer';
import { METHODS, isScaled } from '../methods/methods';
import { metricsAtRank, type RankMetrics } from '../methods/metricsAtRank';
import { lineChartSvg } from './svgChart';

export interface ReportInput {
  title: string;
  checkpoint: string;
  architecture: string | null;
  rank: number;
  calibration: string | null;
  layers: LayerAnalysis[];
  generatedBy: string;
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(2)} %`);
const db = (v: number | null) => (v === null ? '—' : Number.isFinite(v) ? `${v.toFixed(1)} dB` : '∞');

export function normalizedSpectrum(sigma: Float64Array): Float64Array {
  let s = 0;
  for (const v of sigma) s += v * v;
  const n = Math.sqrt(s) || 1;
  return sigma.map((v) => v / n);
}

function relativeCurve(errSq: Float64Array, refSq: number | null): Float64Array {
  return errSq.map((e) => (refSq ? Math.sqrt(e / refSq) : NaN));
}

export interface ReportTotals {
  parameters: number;
  bytes: number;
  bitsPerWeight: number;
  meanWeightError: number;
  meanOutputError: number | null;
}

export function totals(layers: LayerAnalysis[], metrics: RankMetrics[]): ReportTotals {
  let params = 0;
  let bytes = 0;
  let we = 0;
  let oe = 0;
  let oeCount = 0;
  layers.forEach((a, i) => {
    const m = metrics[i]!;
    params += a.shape[0] * a.shape[1];
    bytes += m.bytes;
    we += m.weightError;
    if (m.outputError !== null) {
      oe += m.outputError;
      oeCount++;
    }
  });
  return {
    parameters: params,
    bytes,
    bitsPerWeight: params ? (8 * bytes) / params : 0,
    meanWeightError: layers.length ? we / layers.length : 0,
    meanOutputError: oeCount ? oe / oeCount : null,
  };
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --bg: #ffffff; --grid: #d1d9e0; --a: #0969da; --b: #d1242f; --c: #1a7f37; --d: #8250df; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --grid: #3d444d; --a: #4493f8; --b: #f85149; --c: #3fb950; --d: #ab7df8; } }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 24px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; } h3 { font-size: 15px; margin: 20px 0 6px; font-family: ui-monospace, monospace; }
.muted { color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 3px 10px; border-bottom: 1px solid var(--grid); text-align: right; }
th:first-child, td:first-child { text-align: left; font-family: ui-monospace, monospace; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; } dt { color: var(--muted); } dd { margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg { background: var(--bg); } svg .title { font-weight: 600; font-size: 13px; fill: var(--fg); }
svg .plot { fill: none; stroke: var(--grid); } svg .grid { stroke: var(--grid); stroke-width: .5; }
svg .tick, svg .axis, svg .legend, svg .marker-label { font-size: 11px; fill: var(--muted); }
svg .series { fill: none; stroke-width: 1.6; } svg .s-a { stroke: var(--a); } svg .s-b { stroke: var(--b); } svg .s-c { stroke: var(--c); } svg .s-d { stroke: var(--d); }
svg .marker { stroke: var(--muted); stroke-dasharray: 4 3; }
`;

export function htmlReport(r: ReportInput): string {
  const metrics = r.layers.map((a) => metricsAtRank(a, r.rank));
  const t = totals(r.layers, metrics);
  const methods = [...new Set(r.layers.map((a) => METHODS[a.method].label))].join(', ');
  const formats = [...new Set(r.layers.map((a) => a.weightFormat))].join(', ');
  const rows = r.layers
    .map((a, i) => {
      const m = metrics[i]!;
      return `<tr><td>${esc(a.name)}</td><td>${a.shape[0]}×${a.shape[1]}</td><td>${m.rank}</td><td>${m.bitsPerWeight.toFixed(3)}</td><td>${pct(m.weightError)}</td><td>${pct(m.outputError)}</td><td>${db(m.weightSqnrDb)}</td><td>${pct(m.recovered)}</td></tr>`;
    })
    .join('\n');
  const sections = r.layers
    .map((a, i) => {
      const m = metrics[i]!;
      const charts: string[] = [];
      if (a.sigmaPlain.length) {
        charts.push(
          lineChartSvg(
            [
              { label: 'E (before scaling)', y: normalizedSpectrum(a.sigmaPlain), className: 's-a' },
              ...(a.sigmaScaled !== a.sigmaPlain && isScaled(a.method)
                ? [
                    {
                      label: `${METHODS[a.method].label} scaled error`,
                      y: normalizedSpectrum(a.sigmaScaled),
                      className: 's-b',
                    },
                  ]
                : []),
            ],
            {
              title: 'Singular values (same Frobenius norm)',
              xLabel: 'index',
              yLabel: 'σ / ‖σ‖',
              logY: true,
              markers: [{ x: m.rank, label: `k = ${m.rank}` }],
            },
          ),
        );
      }
      const ks = Float64Array.from({ length: a.maxRank + 1 }, (_, k) => k);
      charts.push(
        lineChartSvg(
          [
            {
              label: 'weight error',
              x: ks,
              y: relativeCurve(a.curves.weightErrSq, a.norms.weightSq),
              className: 's-a',
            },
            ...(a.curves.outputErrSq
              ? [
                  {
                    label: 'output error',
                    x: ks,
                    y: relativeCurve(a.curves.outputErrSq, a.norms.outputSq),
                    className: 's-c',
                  },
                ]
              : []),
          ],
          {
            title: 'Relative error vs rank (quantized A, B)',
            xLabel: 'rank k',
            yLabel: 'relative error',
            markers: [{ x: m.rank, label: `k = ${m.rank}` }],
          },
        ),
      );
      return `<h3 id="layer-${i}">${esc(a.name)}</h3>
<p class="muted">${a.shape[0]}×${a.shape[1]} · ${esc(METHODS[a.method].label)} · W ${esc(a.weightFormat)} · A/B ${esc(a.factorFormat)} (${a.factorTiling}) · weight error ${pct(m.weightError)} · output error ${pct(m.outputError)}${a.outputErrorKind === 'diagonal-estimate' ? ' (diagonal estimate)' : ''}${a.nonFinite ? ` · <strong>${a.nonFinite} non-finite weights</strong>` : ''}</p>
<div class="charts">${charts.join('\n')}</div>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(r.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p class="muted">${esc(r.generatedBy)}</p>
<dl>
<dt>Checkpoint</dt><dd>${esc(r.checkpoint)}</dd>
<dt>Architecture</dt><dd>${esc(r.architecture ?? 'unknown')}</dd>
<dt>Method</dt><dd>${esc(methods)}</dd>
<dt>Weight format</dt><dd>${esc(formats)}</dd>
<dt>Rank</dt><dd>${r.rank}</dd>
<dt>Calibration</dt><dd>${esc(r.calibration ?? 'none')}</dd>
<dt>Layers</dt><dd>${r.layers.length} (${(t.parameters / 1e6).toFixed(2)} M weights)</dd>
<dt>Bits per weight</dt><dd>${t.bitsPerWeight.toFixed(3)} (A·B included)</dd>
<dt>Size</dt><dd>${(t.bytes / 2 ** 20).toFixed(2)} MiB</dd>
<dt>Mean weight error</dt><dd>${pct(t.meanWeightError)}</dd>
<dt>Mean output error</dt><dd>${pct(t.meanOutputError)}</dd>
</dl>
<h2>Layers</h2>
<table><thead><tr><th>layer</th><th>shape</th><th>rank</th><th>bits/w</th><th>weight err</th><th>output err</th><th>SQNR</th><th>recovered</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Spectra and error curves</h2>
${sections}
</body></html>
`;
}
