/**
 * The layer panel's "Channel reassembly (QLLM)" section: the site this layer reads its input from
 * (with the layers sharing it), the per-channel max |x| with the outlier channels and the θ that
 * QLLM's search chose, the activation range before and after, and the site's output MSE as is,
 * reassembled, with L²QER, and both. Runs in the worker on request; analysis only.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { formatDuration, shortLayerName } from '../../src/shared/formatting';
import { REASSEMBLY_BITS, sanitizeReassemblyOptions } from '../../src/shared/protocol/layer';
import type { ReassemblyResult, ReassemblySupport, ReassemblyUiOptions } from '../../src/shared/protocol/layer';
import type { UserFacingError } from '../../src/shared/protocol/common';
import { applyTheme, createLineChart, lineDataset, toXY, type LineChart, type XY } from '../lib/charts';
import { selectField, setSelectValue } from '../lib/controls';
import { decimateMax } from '../lib/decimate';
import { el, headedTable, labelledField, setText } from '../lib/dom';
import { mseRows, outlierChannels, rangeRows, splitSummary, verdict } from '../lib/reassemblyModel';
import { withAlpha, type ThemeColors } from '../lib/theme';

const MAX_POINTS = 800;
const sci = (v: number) => (Number.isFinite(v) ? v.toExponential(3) : '—');

export interface ReassemblyHost {
  run(options: ReassemblyUiOptions): void;
  cancel(): void;
}

export class ReassemblyView {
  readonly element: HTMLElement;
  private options: ReassemblyUiOptions;
  private support: ReassemblySupport | null = null;
  private shown: { result: ReassemblyResult; options: ReassemblyUiOptions } | null = null;
  private channelChart: LineChart | null = null;
  private searchChart: LineChart | null = null;
  private readonly site = el('p', { id: 'reassembly-site', className: 'note' });
  private readonly message = el('p', { id: 'reassembly-message', className: 'note' });
  private readonly wBits;
  private readonly aBits;
  private readonly ratio = el('vscode-textfield', {
    id: 'reassembly-ratio',
    attrs: { type: 'number', min: '0.01', max: '1', step: 'any', 'aria-label': 'Extra channels (share of C)' },
  });
  private readonly rank = el('vscode-textfield', {
    id: 'reassembly-rank',
    attrs: { type: 'number', min: '0', max: '512', 'aria-label': 'Rank of the L²QER reference' },
  });
  private readonly runButton = el('vscode-button', { id: 'reassembly-run', text: 'Run Reassembly' });
  private readonly cancelButton = el('vscode-button', {
    id: 'reassembly-cancel',
    text: 'Cancel',
    attrs: { secondary: '' },
  });
  private readonly progress = el('vscode-progress-bar', {
    id: 'reassembly-progress',
    attrs: { 'aria-label': 'Reassembly progress', indeterminate: '' },
  });
  private readonly status = el('p', {
    id: 'reassembly-status',
    className: 'status',
    attrs: { role: 'status', 'aria-live': 'polite' },
  });
  private readonly failure = el('p', { id: 'reassembly-failure', className: 'error', attrs: { role: 'alert' } });
  private readonly verdict = el('p', { id: 'reassembly-verdict' });
  private readonly facts = el('dl', { id: 'reassembly-facts', className: 'facts' });
  private readonly ranges = el('div', { id: 'reassembly-ranges' });
  private readonly mse = el('div', { id: 'reassembly-mse' });
  private readonly notes = el('ul', { id: 'reassembly-notes', className: 'notes' });
  private readonly channelCanvas = el('canvas', { id: 'reassembly-channels' });
  private readonly searchCanvas = el('canvas', { id: 'reassembly-search' });
  private readonly result = el('div', { id: 'reassembly-result' });
  private readonly controls: HTMLElement;

  constructor(
    private theme: ThemeColors,
    options: ReassemblyUiOptions,
    private readonly host: ReassemblyHost,
  ) {
    this.options = options;
    const bitChoices = REASSEMBLY_BITS.map((b) => ({ value: String(b), label: `${b}-bit` }));
    this.wBits = selectField(
      'reassembly-w-bits',
      'Weights (per output channel)',
      bitChoices,
      String(options.weightBits),
      () => this.readOptions(),
    );
    this.aBits = selectField('reassembly-a-bits', 'Activations (per token)', bitChoices, String(options.actBits), () =>
      this.readOptions(),
    );
    this.ratio.value = String(options.channelRatio);
    this.rank.value = String(options.rank);
    this.ratio.addEventListener('change', () => this.readOptions());
    this.rank.addEventListener('change', () => this.readOptions());
    this.runButton.addEventListener('click', () => this.host.run(this.readOptions()));
    this.cancelButton.addEventListener('click', () => this.host.cancel());
    this.cancelButton.hidden = true;
    this.progress.hidden = true;
    this.failure.hidden = true;
    this.result.hidden = true;
    this.controls = el(
      'div',
      { className: 'controls' },
      this.wBits.field,
      this.aBits.field,
      labelledField('Extra channels (× C)', this.ratio),
      labelledField('L²QER rank', this.rank),
      this.runButton,
      this.cancelButton,
    );
    this.result.append(
      this.verdict,
      this.facts,
      el('h3', { text: 'Per-channel max |x| of the site’s input' }),
      el('div', { className: 'chart-box small' }, this.channelCanvas),
      el('h3', { text: 'Activation range' }),
      this.ranges,
      el('h3', { text: 'Site output error (relative MSE: mean (y − ŷ)² / mean y²)' }),
      this.mse,
      el('h3', { text: 'θ search (QLLM): site MSE at each θ tried' }),
      el('div', { className: 'chart-box small' }, this.searchCanvas),
      this.notes,
    );
    this.element = el(
      'section',
      { id: 'reassembly', className: 'reassembly', attrs: { 'aria-labelledby': 'reassembly-title' } },
      el('h2', { id: 'reassembly-title', text: 'Channel reassembly (QLLM)' }),
      el('p', {
        className: 'caption',
        text: 'QLLM’s adaptive channel reassembly at this layer’s input: channels with outlier activations are split into several smaller ones (disassembly at a threshold θ) and similar channels are merged back (assembly), so that per-token activation quantization needs a smaller range. θ comes from QLLM’s search; the quantizers are per-token activations and per-output-channel weights (INT, asymmetric). Shown beside L²QER on the same layers.',
      }),
      el('p', {
        id: 'reassembly-scope',
        className: 'note',
        text: 'Analysis only: reassembly is not applied to exported checkpoints or recipes. QLLM’s gradient-based low-rank tuning (LoRA on the quantized blocks) is out of scope here.',
      }),
      this.site,
      this.message,
      this.controls,
      this.progress,
      this.status,
      this.failure,
      this.result,
    );
  }

  get currentOptions(): ReassemblyUiOptions {
    return this.options;
  }

  private readOptions(): ReassemblyUiOptions {
    this.options = sanitizeReassemblyOptions(
      {
        weightBits: Number(this.wBits.select.value),
        actBits: Number(this.aBits.select.value),
        channelRatio: Number(this.ratio.value),
        rank: Number(this.rank.value),
      },
      this.options,
    );
    return this.options;
  }

  setTheme(theme: ThemeColors): void {
    this.theme = theme;
    if (this.channelChart) applyTheme(this.channelChart, theme);
    if (this.searchChart) applyTheme(this.searchChart, theme);
    if (this.shown) this.drawCharts(this.shown.result);
  }

  setSupport(support: ReassemblySupport): void {
    this.support = support;
    const site = support.site;
    this.site.replaceChildren();
    if (site) {
      this.site.append(
        `Site: ${shortLayerName(site.site)} · ${site.channels} input channels · `,
        site.layers.length > 1
          ? `shared by ${site.layers.map(shortLayerName).join(', ')} (reassembled together: one input, one rewrite)`
          : `read by this layer only`,
      );
    }
    const ready = support.status === 'ready';
    this.message.classList.toggle('warning', !ready);
    setText(this.message, support.message);
    this.runButton.toggleAttribute('disabled', !ready);
    this.controls.classList.toggle('disabled', !ready);
    this.element.dataset.status = support.status;
  }

  setRunning(elapsedMs: number): void {
    this.progress.hidden = false;
    this.cancelButton.hidden = false;
    this.runButton.toggleAttribute('disabled', true);
    this.failure.hidden = true;
    setText(
      this.status,
      `Searching θ and reassembling the site in the worker… ${formatDuration(elapsedMs)}${this.shown ? ' — the previous result stays until then' : ''}`,
    );
  }

  private idle(): void {
    this.progress.hidden = true;
    this.cancelButton.hidden = true;
    this.runButton.toggleAttribute('disabled', this.support?.status !== 'ready');
  }

  setFailed(error: UserFacingError): void {
    this.idle();
    this.failure.hidden = false;
    setText(
      this.failure,
      error.code === 'cancelled' ? 'Reassembly cancelled.' : `Cannot reassemble this site: ${error.message}`,
    );
    setText(this.status, '');
  }

  setResult(result: ReassemblyResult, options: ReassemblyUiOptions, timeMs: number, cached: boolean): void {
    this.idle();
    this.shown = { result, options };
    this.options = options;
    setSelectValue(this.wBits.select, String(options.weightBits));
    setSelectValue(this.aBits.select, String(options.actBits));
    this.ratio.value = String(options.channelRatio);
    this.rank.value = String(options.rank);
    this.failure.hidden = true;
    this.result.hidden = false;
    setText(
      this.status,
      `W${result.weightBits} per output channel, A${result.actBits} per token, up to ${Math.floor(result.channelRatio * result.channels)} extra channels, ${result.rows} activation rows — ${cached ? 'from this session' : `computed in ${formatDuration(timeMs)}`}.`,
    );
    setText(this.verdict, verdict(result));
    this.verdict.className = result.helps ? 'verdict good' : 'verdict';
    this.element.dataset.helps = String(result.helps);
    const facts: [string, string, string?][] = [
      ['θ found', result.threshold === null ? 'none (no reassembly)' : result.threshold.toPrecision(4)],
      [
        'Channels split',
        result.splits.length ? `${result.splits.length} → ${result.extraChannels} extra channels` : 'none',
        splitSummary(result, 40),
      ],
      ['Channels merged', result.merges.length ? `${result.merges.length} pairs (back to ${result.channels})` : 'none'],
    ];
    if (result.splits.length) facts.push(['Largest splits', splitSummary(result)]);
    this.facts.replaceChildren(
      ...facts.flatMap(([k, v, title]) => [
        el('dt', { text: k }),
        el('dd', { text: v, attrs: { 'data-fact': k }, ...(title ? { title } : {}) }),
      ]),
    );
    this.ranges.replaceChildren(
      headedTable(
        'reassembly-ranges',
        'Activation range before and after reassembly',
        [{ text: '' }, { text: 'Before', num: true }, { text: 'After', num: true }, { text: 'Change', num: true }],
        rangeRows(result).map((r) =>
          el(
            'tr',
            {},
            el('td', { text: r.label }),
            el('td', { className: 'num', text: r.before.toPrecision(4) }),
            el('td', { className: 'num', text: r.after.toPrecision(4) }),
            el('td', {
              className: 'num',
              text: r.before > 0 ? `${(100 * (r.after / r.before - 1)).toFixed(1)} %` : '—',
            }),
          ),
        ),
      ),
    );
    this.mse.replaceChildren(
      headedTable(
        'reassembly-mse',
        'Site output MSE',
        [
          { text: '' },
          { text: `W${result.weightBits} + A${result.actBits}`, num: true },
          { text: `W${result.weightBits} only`, num: true },
        ],
        mseRows(result).map((r) =>
          el(
            'tr',
            { className: r.best ? 'best' : '', attrs: { 'data-variant': r.id } },
            el('td', { text: r.label + (r.best ? ' ★' : '') }),
            el('td', { className: 'num', text: sci(r.quantized) }),
            el('td', { className: 'num', text: sci(r.weightOnly) }),
          ),
        ),
      ),
    );
    this.notes.replaceChildren(...result.notes.map((n) => el('li', { text: n })));
    this.drawCharts(result);
  }

  private drawCharts(r: ReassemblyResult): void {
    const [c0, c1] = this.theme.series;
    this.channelChart ??= createLineChart(this.channelCanvas, this.theme, {
      xTitle: 'input channel',
      yTitle: 'max |x|',
      logY: true,
      ariaLabel: 'Per-channel maximum absolute activation, before and after reassembly, with the outlier channels',
    });
    const ch = this.channelChart;
    const outliers = outlierChannels(r.channelMax, r.threshold);
    const positive = (points: XY[]) => points.map((p) => ({ x: p.x, y: p.y > 0 ? p.y : NaN }));
    const datasets = [
      lineDataset('before', positive(toXY(decimateMax(r.channelMax, MAX_POINTS))), c0),
      lineDataset('after reassembly', positive(toXY(decimateMax(r.after.channelMax, MAX_POINTS))), c1, {
        borderDash: [5, 4],
      }),
      lineDataset(
        `outlier channels (> θ): ${outliers.length}`,
        outliers.map((c) => ({ x: c, y: r.channelMax[c]! })),
        this.theme.bad,
        { showLine: false, pointRadius: 3, pointHoverRadius: 4, pointStyle: 'triangle' },
      ),
    ];
    if (r.threshold !== null) {
      datasets.push(
        lineDataset(
          `θ = ${r.threshold.toPrecision(3)}`,
          [
            { x: 0, y: r.threshold },
            { x: Math.max(1, r.channels - 1), y: r.threshold },
          ],
          this.theme.marker,
          { borderDash: [2, 3], borderWidth: 1 },
        ),
      );
    }
    ch.data.datasets = datasets;
    const x = ch.options.scales?.x;
    if (x) {
      x.min = 0;
      x.max = Math.max(1, r.channels - 1, r.after.channelMax.length - 1);
    }
    ch.update('none');
    this.channelCanvas.dataset.outliers = String(outliers.length);

    this.searchChart ??= createLineChart(this.searchCanvas, this.theme, {
      xTitle: 'θ',
      yTitle: 'relative MSE',
      logY: true,
      ariaLabel: 'Site output MSE at each threshold the search tried',
    });
    const s = this.searchChart;
    const rel = (v: number) => (r.outputPower > 0 ? v / r.outputPower : v);
    const tried = r.search.theta.map((t, i) => ({ x: t, y: rel(r.search.mse[i]!) })).sort((a, b) => a.x - b.x);
    s.data.datasets = [
      lineDataset('assemble, then disassemble (as the search scores it)', tried, c0, { pointRadius: 2 }),
      lineDataset(
        'as is',
        tried.length
          ? [
              { x: tried[0]!.x, y: rel(r.before.quantizedMse) },
              { x: tried[tried.length - 1]!.x, y: rel(r.before.quantizedMse) },
            ]
          : [],
        withAlpha(this.theme.muted, 0.9),
        { borderDash: [5, 4] },
      ),
    ];
    s.update('none');
  }
}
