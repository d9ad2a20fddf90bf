/**
 * Checkpoint overview (the custom editor): file facts, the checkpoint's current settings, model
 * totals, the blocks × layers heatmap, the method comparison, the linear-layer table with results
 * as they arrive, and every tensor.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import type { CheckpointSummary } from '../src/shared/checkpointSummary';
import { headlineError } from '../src/shared/errorScale';
import {
  formatBits,
  formatBytes,
  formatCount,
  formatDuration,
  formatPercent,
  shortLayerName,
} from '../src/shared/formatting';
import { DEFAULT_SETTINGS, MAX_SLIDER_RANK, blockSizeApplies, type QuantSettings } from '../src/shared/quantSettings';
import type { CalibrationLabel, JobProgress, MethodChoice } from '../src/shared/protocol/common';
import type {
  ModelTotals,
  OverviewCommand,
  HostToOverview,
  OverviewToHost,
  OverviewState,
} from '../src/shared/protocol/overview';
import { parseOverviewState } from '../src/shared/protocol/overview';
import { methodComparisonTable } from './lib/methodComparisonTable';
import { settingsControls } from './lib/settingsControls';
import { catchGlobalErrors, el, headedTable, labelledField, setText, showFatal } from './lib/dom';
import { connectToHost } from './lib/host';
import { readTheme, watchTheme } from './lib/theme';
import { AllocationSection } from './overview/allocationSection';
import { HeatmapView } from './overview/heatmapView';
import { LayersTableView } from './overview/layersTableView';

const host = connectToHost<HostToOverview, OverviewToHost, OverviewState>();
const app = document.getElementById('app')!;
catchGlobalErrors(app);

let theme = readTheme();
let settings: QuantSettings | null = null;
let ui: ReturnType<typeof buildUi> | null = null;
/** What survives a reload: the allocation's controls. */
let state: OverviewState = parseOverviewState(host.getState());

const post = (m: OverviewToHost) => host.post(m);
const command = (c: OverviewCommand) => post({ type: 'command', command: c });

function button(id: string, text: string, c: OverviewCommand, secondary = true): HTMLElement {
  const b = el('vscode-button', { id, text, attrs: secondary ? { secondary: '' } : {} });
  b.addEventListener('click', () => command(c));
  return b;
}

function dtypeSummary(s: CheckpointSummary): string {
  const counts = new Map<string, number>();
  for (const t of s.tensors) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([d, n]) => `${d} ×${n}`)
    .join(', ');
}

function factsList(s: CheckpointSummary): HTMLElement {
  const totalBytes = s.files.reduce((a, f) => a + f.size, 0);
  const pairs: [string, string, string?][] = [
    ['Format', s.format],
    ['Architecture', s.architecture ?? 'unknown'],
    ['Family', s.family ?? 'not recognised'],
    ['Parameters', formatCount(s.parameterCount)],
    ['Dtypes', dtypeSummary(s)],
    [
      'Files',
      `${s.files.length} (${formatBytes(totalBytes)})`,
      s.files.map((f) => `${f.path.split(/[\\/]/).pop()} · ${formatBytes(f.size)}`).join('\n'),
    ],
    [
      'Linear layers',
      `${s.linearLayers.length} (${s.linearLayers.filter((l) => l.quantizedByDefault).length} quantized by default)`,
    ],
  ];
  return el(
    'dl',
    { className: 'facts' },
    ...pairs.flatMap(([k, v, title]) => [el('dt', { text: k }), el('dd', { text: v, ...(title ? { title } : {}) })]),
  );
}

function tensorsSection(s: CheckpointSummary): HTMLElement {
  const rows = s.tensors.map((t) =>
    el(
      'tr',
      { attrs: { 'data-name': t.name } },
      el('td', { className: 'name', text: t.name }),
      el('td', { text: t.dtype }),
      el('td', { className: 'shape', text: `[${t.shape.join(', ')}]` }),
    ),
  );
  const table = headedTable('tensors', 'Tensors', [{ text: 'Name' }, { text: 'Dtype' }, { text: 'Shape' }], rows);
  const filter = el('vscode-textfield', {
    id: 'tensor-filter',
    attrs: { placeholder: 'Filter tensors', 'aria-label': 'Filter tensors' },
  });
  filter.addEventListener('input', () => {
    const q = (filter.value ?? '').toLowerCase();
    for (const r of rows) r.hidden = q !== '' && !(r.dataset.name ?? '').toLowerCase().includes(q);
  });
  return el(
    'section',
    { id: 'tensors-section' },
    el('h2', { text: `Tensors (${s.tensors.length})` }),
    filter,
    el('div', { className: 'table-scroll' }, table),
  );
}

function buildUi(s: CheckpointSummary) {
  const controls = settingsControls(DEFAULT_SETTINGS, [], change);
  const rank = el('vscode-textfield', {
    id: 'rank',
    attrs: { type: 'number', min: '0', max: String(MAX_SLIDER_RANK), value: '32', 'aria-label': 'Rank k' },
  });
  const applyRank = () => {
    const k = Number(rank.value);
    if (Number.isFinite(k) && k >= 0) change({ rank: Math.min(MAX_SLIDER_RANK, Math.round(k)) });
  };
  rank.addEventListener('change', applyRank);
  rank.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Enter') applyRank();
  });
  const rankField = labelledField('Rank k', rank);
  const calibration = el('p', { id: 'calibration', className: 'note' });
  const cancel = button('cancel', 'Cancel', 'cancel');
  cancel.hidden = true;
  const progressBar = el('vscode-progress-bar', { id: 'progress', attrs: { 'aria-label': 'Progress' } });
  progressBar.hidden = true;
  const progressText = el('p', {
    id: 'progress-text',
    className: 'status',
    attrs: { role: 'status', 'aria-live': 'polite' },
  });
  const totals = el('dl', { id: 'totals', className: 'totals' });
  const comparison = el(
    'section',
    { id: 'comparison', attrs: { 'aria-labelledby': 'comparison-title' } },
    el('h2', { id: 'comparison-title', text: 'Method comparison' }),
  );
  comparison.hidden = true;
  const heatmap = new HeatmapView(theme, (name) => post({ type: 'openLayer', name }));
  const table = new LayersTableView((name) => post({ type: 'openLayer', name }));
  const allocation = new AllocationSection(
    theme,
    {
      post,
      save: (request, view) => {
        state = { ...state, allocation: { request, view } };
        host.setState(state);
      },
    },
    state.allocation,
  );
  const warnings = s.warnings.length
    ? el(
        'ul',
        { className: 'warning', attrs: { 'aria-label': 'Warnings' } },
        ...s.warnings.map((w) => el('li', { text: w })),
      )
    : null;

  app.replaceChildren(
    el('h1', { text: s.path.split(/[\\/]/).pop() ?? s.path, title: s.path }),
    ...(warnings ? [warnings] : []),
    factsList(s),
    el(
      'section',
      { className: 'controls', attrs: { 'aria-label': 'Quantization settings' } },
      ...controls.fields,
      rankField,
    ),
    el(
      'div',
      { className: 'calibration-row' },
      calibration,
      button('set-calibration', 'Set Calibration…', 'setCalibration'),
    ),
    el(
      'div',
      { className: 'toolbar' },
      button('analyze-all', 'Analyze All Layers', 'analyzeAll', false),
      button('compare', 'Compare Methods', 'compareMethods'),
      button('export-checkpoint', 'Export Quantized Checkpoint', 'exportCheckpoint'),
      button('export-report', 'Export Report', 'exportReport'),
      cancel,
    ),
    progressBar,
    progressText,
    el(
      'section',
      { id: 'totals-section', attrs: { 'aria-labelledby': 'totals-title' } },
      el('h2', { id: 'totals-title', text: 'Quantized model' }),
      totals,
    ),
    heatmap.element,
    comparison,
    allocation.element,
    table.element,
    tensorsSection(s),
  );
  heatmap.setLayers(s.linearLayers);
  table.setLayers(s.linearLayers);
  return {
    controls,
    rank: rank,
    calibration,
    cancel,
    progressBar,
    progressText,
    totals,
    comparison,
    heatmap,
    table,
    allocation,
  };
}

function change(patch: Partial<QuantSettings>): void {
  if (!settings) return;
  const next = { ...settings, ...patch };
  if (JSON.stringify(next) === JSON.stringify(settings)) return;
  settings = next;
  if (ui) ui.controls.block.disabled = !blockSizeApplies(next.weightFormat);
  post({ type: 'setSettings', settings: next });
}

function showSettings(s: QuantSettings, methods: MethodChoice[], calibration: CalibrationLabel | null): void {
  if (!ui) return;
  settings = s;
  ui.controls.setMethods(methods, s.method);
  ui.controls.show(s);
  if (ui.rank.value !== String(s.rank)) ui.rank.value = String(s.rank);
  const disabled = methods.filter((m) => m.disabledReason);
  setText(
    ui.calibration,
    (calibration
      ? `Calibration: ${calibration.summary}.`
      : 'No calibration: output error and the calibrated methods are unavailable.') +
      (disabled.length
        ? ` ${disabled.map((m) => m.label).join(', ')} unavailable: ${disabled[0]!.disabledReason}.`
        : ''),
  );
}

function showTotals(t: ModelTotals, rank: number): void {
  if (!ui) return;
  const pairs: [string, string][] = [
    ['Bits per weight', `${formatBits(t.bitsPerWeight)} (quantized layers, A·B at rank ${rank} included)`],
    [
      'Quantized model',
      `${formatBytes(t.modelBytes)} of ${formatBytes(t.originalBytes)} (${t.originalBytes ? ((100 * t.modelBytes) / t.originalBytes).toFixed(1) : '—'} %)`,
    ],
    [
      'Quantized layers',
      `${t.quantizedLayers} · ${formatCount(t.quantizedParameters)} weights · ${formatBytes(t.quantizedBytes)}`,
    ],
    ['A·B overhead', formatPercent(t.factorOverhead, 1)],
    ['Analysed', `${t.analysedLayers} / ${t.quantizedLayers}`],
    ['Mean weight error', formatPercent(t.meanWeightError)],
    ['Mean output error', t.meanOutputError === null ? '— (needs calibration)' : formatPercent(t.meanOutputError)],
  ];
  ui.totals.replaceChildren(
    ...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v, attrs: { 'data-total': k } })]),
  );
}

function showProgress(p: JobProgress): void {
  if (!ui) return;
  ui.progressBar.hidden = !p.running;
  ui.cancel.hidden = !p.running;
  ui.progressBar.max = Math.max(1, p.total);
  ui.progressBar.value = p.done;
  const what = p.kind === 'analysis' ? 'Analysing' : p.kind === 'method-comparison' ? 'Comparing methods' : 'Exporting';
  const unit = p.kind === 'method-comparison' ? 'analyses' : 'layers';
  if (p.running) {
    setText(
      ui.progressText,
      `${what}: ${p.done} / ${p.total} ${unit}${p.current ? ` · ${shortLayerName(p.current)}` : ''}${p.etaMs !== null ? ` · ETA ${formatDuration(p.etaMs)}` : ''}`,
    );
  } else {
    setText(
      ui.progressText,
      p.done < p.total ? `${what}: stopped at ${p.done} / ${p.total} ${unit}.` : `${what}: done, ${p.total} ${unit}.`,
    );
  }
}

host.onMessage((msg) => {
  switch (msg.type) {
    case 'loading':
      app.replaceChildren(el('p', { className: 'status', text: `Reading ${msg.path}…` }));
      break;
    case 'checkpoint':
      ui = buildUi(msg.summary);
      break;
    case 'settings':
      showSettings(msg.settings, msg.methods, msg.calibration);
      break;
    case 'results': {
      if (!ui) break;
      ui.table.setResults(msg.rows, msg.failures);
      const values = new Map<string, number>();
      let calibrated = false;
      for (const r of msg.rows) {
        const v = headlineError(r);
        if (v !== null) values.set(r.name, v);
        if (r.outputError !== null) calibrated = true;
      }
      ui.heatmap.setValues(
        values,
        calibrated ? `Output error at rank ${msg.rank}` : `Weight error at rank ${msg.rank}`,
        shortLayerName,
      );
      showTotals(msg.totals, msg.rank);
      break;
    }
    case 'progress':
      showProgress(msg.progress);
      break;
    case 'methodComparison':
      if (ui) {
        ui.comparison.hidden = false;
        ui.comparison.replaceChildren(
          el('h2', { id: 'comparison-title', text: 'Method comparison' }),
          methodComparisonTable(msg.comparison),
        );
      }
      break;
    case 'allocationSupport':
      ui?.allocation.setSupport(msg.support);
      break;
    case 'allocationProgress':
      ui?.allocation.setProgress(msg.progress);
      break;
    case 'allocation':
      ui?.allocation.setCurves(msg.allocation, msg.view);
      break;
    case 'allocationFailed':
      ui?.allocation.setFailed(msg.error);
      break;
    case 'error':
      showFatal(app, 'Cannot open this checkpoint', msg.error.message);
      break;
  }
});

watchTheme((t) => {
  theme = t;
  ui?.heatmap.setTheme(t);
  ui?.allocation.setTheme(t);
});

post({ type: 'ready' });
