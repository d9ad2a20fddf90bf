/**
 * Layer inspection panel: spectra and captured-energy charts, live metrics at rank k, the
 * controls (method, formats, rank), the activation view and the method comparison.
 *
 * A slider step is handled entirely here: metricsAtRank reads the precomputed curves (O(1)), the
 * metrics are written synchronously, and the charts' rank marker is redrawn on the next frame.
 * Only method and format changes go to the host, which answers with a new analysis.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { formatDuration } from '../src/shared/formatting';
import {
  BLOCK_SIZE_CHOICES,
  DEFAULT_SETTINGS,
  FACTOR_FORMAT_CHOICES,
  WEIGHT_FORMAT_CHOICES,
  blockSizeApplies,
  describeSettings,
  fittedStepsApply,
  importanceWeightsApply,
  sameAnalysis,
  usesFittedSteps,
  type QuantSettings,
} from '../src/shared/quantSettings';
import { DEFAULT_REASSEMBLY_OPTIONS, sanitizeReassemblyOptions } from '../src/shared/protocol/layer';
import type {
  LayerAnalysis,
  HostToLayer,
  LayerToHost,
  LayerPanelSetup,
  LayerPanelState,
  ReassemblyUiOptions,
} from '../src/shared/protocol/layer';
import type { MethodChoice, UserFacingError } from '../src/shared/protocol/common';
import { methodComparisonTable } from './lib/methodComparisonTable';
import { selectField, setOptions, setSelectValue } from './lib/controls';
import { catchGlobalErrors, el, setText, showFatal } from './lib/dom';
import { connectToHost } from './lib/host';
import { readTheme, watchTheme } from './lib/theme';
import { ActivationView } from './layer/activationView';
import { METRIC_KEYS, METRIC_LABELS, metricValues, type MetricKey } from './layer/metrics';
import { ReassemblyView } from './layer/reassemblyView';
import { SpectraCharts } from './layer/spectraCharts';
import { STEP_FIT_OPTION_LABEL, StepFitView } from './layer/stepFitView';

const host = connectToHost<HostToLayer, LayerToHost, LayerPanelState>();
const app = document.getElementById('app')!;
catchGlobalErrors(app);

/** Saved state and rank messages wait until the slider rests this long. */
const SETTLE_MS = 250;

interface View {
  setup: LayerPanelSetup;
  /** What the controls show and the host was last asked for. */
  requested: QuantSettings;
  /** The analysis on screen and the settings it was computed with. */
  shown: { settings: QuantSettings; analysis: LayerAnalysis; note: string } | null;
  raw: boolean;
  rank: number;
  /** The reassembly options of the last run asked for (null: never run in this panel). */
  reassembly: ReassemblyUiOptions | null;
  /** Bring the saved reassembly back once the host says the site can run (once per setup). */
  restoreReassembly: boolean;
}

let view: View | null = null;
let ui: ReturnType<typeof buildUi> | null = null;
let theme = readTheme();
let settleTimer = 0;

function post(m: LayerToHost): void {
  host.post(m);
}

function saveState(): void {
  if (!view) return;
  host.setState({
    version: 1,
    checkpoint: view.setup.checkpoint,
    layer: view.setup.layer.name,
    settings: { ...view.requested, rank: view.rank },
    raw: view.raw,
    ...(view.reassembly ? { reassembly: view.reassembly } : {}),
  });
}

function methodOptions(methods: MethodChoice[]) {
  return methods.map((m) => ({
    value: m.name,
    label: m.label,
    description: m.disabledReason ?? m.description,
    disabled: m.disabledReason !== null,
  }));
}

function buildUi(setup: LayerPanelSetup) {
  const s = setup.settings;
  const status = el('p', { id: 'status', className: 'status', attrs: { role: 'status', 'aria-live': 'polite' } });
  const progress = el('vscode-progress-bar', { id: 'progress', attrs: { 'aria-label': 'Analysis progress' } });
  progress.hidden = true;
  const failure = el('p', { id: 'failure', className: 'error', attrs: { role: 'alert' } });
  failure.hidden = true;

  const method = selectField('method', 'Method', methodOptions(setup.methods), s.method, (v) =>
    changeSettings({ method: v as QuantSettings['method'] }),
  );
  const weight = selectField(
    'weight-format',
    'Weight format',
    WEIGHT_FORMAT_CHOICES.map((f) => ({ value: f, label: f.toUpperCase() })),
    s.weightFormat,
    (v) => changeSettings({ weightFormat: v }),
  );
  const block = selectField(
    'block-size',
    'Block / group',
    BLOCK_SIZE_CHOICES.map((b) => ({ value: String(b), label: b === -1 ? 'per row' : String(b) })),
    String(s.blockSize),
    (v) => changeSettings({ blockSize: Number(v) }),
  );
  const factor = selectField(
    'factor-format',
    'A/B format',
    FACTOR_FORMAT_CHOICES.map((f) => ({ value: f, label: f.toUpperCase() })),
    s.factorFormat,
    (v) => changeSettings({ factorFormat: v }),
  );
  const fittedSteps = el('vscode-checkbox', {
    id: 'fitted-steps',
    attrs: { label: STEP_FIT_OPTION_LABEL },
  });
  fittedSteps.checked = s.fittedSteps === true;
  fittedSteps.addEventListener('change', () => changeSettings({ fittedSteps: fittedSteps.checked }));
  const importanceWeights = el('vscode-checkbox', {
    id: 'importance-weights',
    attrs: { label: 'Importance-weighted (imatrix from calibration)' },
  });
  importanceWeights.checked = s.importanceWeights === true;
  importanceWeights.addEventListener('change', () => changeSettings({ importanceWeights: importanceWeights.checked }));
  const methodNote = el('p', { id: 'method-note', className: 'note' });

  const slider = el('input', {
    id: 'rank-slider',
    attrs: {
      type: 'range',
      min: '0',
      max: String(setup.maxRank),
      step: '1',
      value: String(s.rank),
      'aria-label': 'Rank k',
    },
  });
  const rankInput = el('vscode-textfield', {
    id: 'rank-input',
    attrs: {
      type: 'number',
      min: '0',
      max: String(setup.maxRank),
      value: String(s.rank),
      'aria-label': 'Rank k (number)',
    },
  });
  const rankMax = el('span', { className: 'muted', text: `of ${setup.maxRank}` });

  const rawToggle = el('vscode-checkbox', { id: 'raw-toggle', attrs: { label: 'Raw singular values' } });
  const spectraCanvas = el('canvas', { id: 'spectra-chart' });
  const energyCanvas = el('canvas', { id: 'energy-chart' });
  const shownNote = el('p', { id: 'shown', className: 'caption' });
  const charts = el(
    'section',
    { className: 'charts', attrs: { 'aria-label': 'Spectra' } },
    el('div', { className: 'chart-head' }, el('h2', { text: 'Singular values of the error' }), rawToggle),
    el('div', { className: 'chart-box' }, spectraCanvas),
    el('h2', { text: 'Captured error energy' }),
    el('div', { className: 'chart-box' }, energyCanvas),
    shownNote,
  );

  const metricCells = {} as Record<MetricKey, HTMLElement>;
  const metrics = el('dl', { id: 'metrics', className: 'metrics' });
  for (const key of METRIC_KEYS) {
    metricCells[key] = el('dd', { attrs: { 'data-metric': key }, text: '—' });
    metrics.append(el('dt', { text: METRIC_LABELS[key] }), metricCells[key]);
  }
  const warnings = el('p', { id: 'warnings', className: 'warning' });
  warnings.hidden = true;

  const compareButton = el('vscode-button', { id: 'compare', text: 'Compare Methods', attrs: { secondary: '' } });
  compareButton.addEventListener('click', () => post({ type: 'compareMethods' }));
  const overviewButton = el('vscode-button', {
    id: 'open-overview',
    text: 'Checkpoint Overview',
    attrs: { secondary: '' },
  });
  overviewButton.addEventListener('click', () => post({ type: 'openOverview' }));
  const cancelButton = el('vscode-button', { id: 'cancel', text: 'Cancel', attrs: { secondary: '' } });
  cancelButton.hidden = true;
  cancelButton.addEventListener('click', () => post({ type: 'cancel' }));
  const comparisonBody = el(
    'div',
    { id: 'comparison-body' },
    el('p', {
      className: 'muted',
      text: 'Runs every method at these formats and rank — the same bit budget — and lists their errors.',
    }),
  );

  const activation = new ActivationView(theme);
  const stepFit = new StepFitView(() => requestStepFit(true));
  const reassembly = new ReassemblyView(
    theme,
    view?.reassembly ?? { ...DEFAULT_REASSEMBLY_OPTIONS, rank: s.rank || DEFAULT_REASSEMBLY_OPTIONS.rank },
    {
      run: (options) => {
        if (view) view.reassembly = options;
        saveState();
        post({ type: 'reassemble', options });
      },
      cancel: () => post({ type: 'cancelReassembly' }),
    },
  );
  const l = setup.layer;
  app.replaceChildren(
    el(
      'header',
      { className: 'layer-header' },
      el('h1', { id: 'layer-name', text: l.name, title: l.name }),
      el('p', {
        className: 'subtitle',
        text: `${setup.checkpointName} · [out × in] ${l.shape[0]} × ${l.shape[1]} · ${l.dtype} · ${l.role}${l.block !== null ? ` · block ${l.block}` : ''}`,
      }),
      el('div', { className: 'toolbar' }, overviewButton, compareButton, cancelButton),
      status,
      progress,
      failure,
    ),
    el(
      'section',
      { className: 'controls', attrs: { 'aria-label': 'Settings' } },
      method.field,
      weight.field,
      block.field,
      factor.field,
      el('div', { className: 'field checkbox-field' }, fittedSteps),
      el('div', { className: 'field checkbox-field' }, importanceWeights),
    ),
    methodNote,
    el(
      'section',
      { className: 'rank', attrs: { 'aria-label': 'Rank' } },
      el('label', { text: 'Rank k', attrs: { for: 'rank-slider' } }),
      slider,
      rankInput,
      rankMax,
    ),
    el(
      'div',
      { className: 'layer-main' },
      charts,
      el('aside', { className: 'metrics-box', attrs: { 'aria-label': 'Metrics at rank k' } }, metrics, warnings),
    ),
    stepFit.element,
    activation.element,
    reassembly.element,
    el(
      'section',
      { id: 'comparison', attrs: { 'aria-labelledby': 'comparison-title' } },
      el('h2', { id: 'comparison-title', text: 'Method comparison' }),
      comparisonBody,
    ),
  );

  const chartsView = new SpectraCharts(spectraCanvas, energyCanvas, theme);
  slider.addEventListener('input', () => setRank(Number(slider.value), 'slider'));
  rankInput.addEventListener('change', () => setRank(Number(rankInput.value), 'input'));
  rankInput.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Enter') setRank(Number(rankInput.value), 'input');
  });
  rawToggle.addEventListener('change', () => {
    if (!view) return;
    view.raw = rawToggle.checked;
    chartsView.setRaw(view.raw);
    saveState();
  });

  return {
    status,
    progress,
    failure,
    method: method.select,
    weight: weight.select,
    block: block.select,
    factor: factor.select,
    fittedSteps,
    importanceWeights,
    methodNote,
    slider,
    rankInput: rankInput,
    rawToggle: rawToggle,
    metricCells,
    warnings,
    shownNote,
    chartsView,
    charts,
    activation,
    stepFit,
    reassembly,
    comparisonBody,
    compareButton,
    cancelButton,
  };
}

function updateMethodNote(methods: MethodChoice[], calibration: LayerPanelSetup['calibration']): void {
  if (!ui) return;
  const disabled = methods.filter((m) => m.disabledReason);
  const note = ui.methodNote;
  note.replaceChildren();
  if (calibration) note.append(`Calibration: ${calibration.summary}. `);
  if (disabled.length) {
    note.append(
      el('span', { text: `${disabled.map((m) => m.label).join(', ')} unavailable: ${disabled[0]!.disabledReason}. ` }),
    );
  }
}

function updateBlockEnabled(weightFormat: string): void {
  if (!ui) return;
  ui.block.disabled = !blockSizeApplies(weightFormat);
  const int = fittedStepsApply(weightFormat);
  ui.fittedSteps.disabled = !int;
  ui.fittedSteps.title = int
    ? 'The `:fitted` INT format: same storage, steps fitted to this layer'
    : 'INT formats only';
  const ggml = importanceWeightsApply(weightFormat);
  ui.importanceWeights.disabled = !ggml;
  ui.importanceWeights.title = ggml
    ? "The `:imatrix` llama.cpp format: ggml's importance-weighted quantizers, with act_rms² as llama.cpp's imatrix"
    : 'llama.cpp formats only';
}

/**
 * Asks for the fitted-vs-min/max comparison at the current rank: at once when fitted steps are shown
 * (automatic), or on the button (`explicit`).
 */
function requestStepFit(explicit: boolean): void {
  if (!view || !ui || !view.shown) return;
  const settings = view.shown.settings;
  if (!usesFittedSteps(settings) || !view.shown.analysis.stepFit) return;
  if (!explicit && ui.stepFit.shows(settings, view.rank)) return;
  post({ type: 'compareStepFit', settings, rank: view.rank });
}

/** A slider step: O(1) metrics written now, chart marker on the next frame. */
function setRank(value: number, from: 'slider' | 'input' | 'state'): void {
  if (!view || !ui || !Number.isFinite(value)) return;
  const max = view.shown ? Math.min(view.setup.maxRank, finalMaxRank(view.shown.analysis)) : view.setup.maxRank;
  const k = Math.max(0, Math.min(max, Math.round(value)));
  view.rank = k;
  if (from !== 'slider' && ui.slider.value !== String(k)) ui.slider.value = String(k);
  if (ui.rankInput.value !== String(k)) ui.rankInput.value = String(k);
  renderMetrics();
  ui.chartsView.setRank(k);
  window.clearTimeout(settleTimer);
  settleTimer = window.setTimeout(() => {
    post({ type: 'rank', rank: k });
    saveState();
  }, SETTLE_MS);
}

function renderMetrics(): void {
  if (!view || !ui) return;
  const shown = view.shown;
  if (!shown) return;
  const a = shown.analysis;
  if (a.preview && view.rank > a.maxRank) {
    // A first, partial result: its curves stop short of this rank; the rest is on its way.
    for (const key of METRIC_KEYS)
      setText(ui.metricCells[key], key === 'rank' ? `${view.rank} (curves so far: to ${a.maxRank})` : '… coming');
    return;
  }
  const values = metricValues(a, view.rank);
  for (const key of METRIC_KEYS) setText(ui.metricCells[key], values[key]);
}

/** The rank the curves will reach: a partial result's final one, else its own. */
function finalMaxRank(a: LayerAnalysis): number {
  return a.preview ? a.preview.finalMaxRank : a.maxRank;
}

/** What a partial result still lacks, in words. */
function stillComing(a: LayerAnalysis): string {
  if (!a.preview) return '';
  const parts: string[] = [];
  if (a.maxRank < a.preview.finalMaxRank) parts.push(`curves to rank ${a.preview.finalMaxRank} (now ${a.maxRank})`);
  if (a.preview.spectra)
    parts.push(`full spectra (now the top ${a.sigmaPlain.length} of ${Math.min(a.shape[0], a.shape[1])} values)`);
  return parts.join(' and ');
}

function changeSettings(patch: Partial<QuantSettings>): void {
  if (!view) return;
  const next = { ...view.requested, ...patch, rank: view.rank };
  if (sameAnalysis(next, view.requested)) return;
  view.requested = next;
  updateBlockEnabled(next.weightFormat);
  ui?.stepFit.update(next, view.shown && sameAnalysis(next, view.shown.settings) ? view.shown.analysis : null);
  saveState();
  post({ type: 'setSettings', settings: next });
}

function setComputing(fraction: number | null, step: string, settings: QuantSettings): void {
  if (!ui) return;
  const busy = fraction !== null;
  ui.progress.hidden = !busy;
  ui.cancelButton.hidden = !busy;
  const partial = view?.shown?.analysis.preview && sameAnalysis(settings, view.shown.settings) ? view.shown : null;
  ui.charts.classList.toggle('stale', busy && !!view?.shown && !partial);
  ui.charts.dataset.coming = busy && partial ? stillComing(partial.analysis) : '';
  if (busy && partial) {
    ui.progress.value = Math.round(fraction * 100);
    ui.progress.max = 100;
    setText(
      ui.status,
      `Showing first numbers of ${describeSettings(settings, false)}; still computing ${stillComing(partial.analysis)}: ${Math.round(fraction * 100)} % · ${step}`,
    );
  } else if (busy) {
    ui.progress.value = Math.round(fraction * 100);
    ui.progress.max = 100;
    setText(
      ui.status,
      `Computing ${describeSettings(settings, false)}: ${Math.round(fraction * 100)} % · ${step}${view?.shown ? ' — the previous result stays on screen until then' : ''}`,
    );
  }
}

function showAnalysis(settings: QuantSettings, a: LayerAnalysis, cached: boolean, timeMs: number): void {
  if (!view || !ui) return;
  const coming = stillComing(a);
  const note = coming
    ? `first numbers of ${describeSettings(settings, false)} after ${formatDuration(timeMs)}; still coming: ${coming}`
    : `${describeSettings(settings, false)} — ${cached ? 'from the session cache' : `computed in ${formatDuration(timeMs)}`}`;
  view.shown = { settings, analysis: a, note };
  if (coming) setComputing(Number(ui.progress.value) / 100, 'the rest', settings);
  else setComputing(null, '', settings);
  ui.failure.hidden = true;
  if (!coming) setText(ui.status, `Showing ${note}.`);
  const max = Math.min(view.setup.maxRank, finalMaxRank(a));
  ui.slider.max = String(max);
  ui.slider.disabled = max === 0;
  ui.rankInput.max = max;
  ui.rankInput.disabled = max === 0;
  ui.chartsView.setAnalysis(a, view.raw);
  ui.charts.dataset.weightFormat = a.weightFormat;
  ui.charts.dataset.method = a.method;
  const warnings: string[] = [];
  if (a.nonFinite)
    warnings.push(`The weight holds ${a.nonFinite} NaN or infinite values: these numbers are not meaningful.`);
  if (a.sigmaPlain.length === 0 && !a.preview) warnings.push('The spectra were not computed for this analysis.');
  if (a.ggml?.fallback) warnings.push(`Stored as ${a.ggml.stored}: ${a.ggml.fallback}.`);
  if (a.ggml?.imatrix)
    warnings.push(`${a.ggml.stored} quantized with importance weights (imatrix = act_rms² from calibration).`);
  if (a.outputErrorKind === 'diagonal-estimate')
    warnings.push('Output error estimated from per-channel RMS only (the calibration file has no Gram matrix).');
  // The randomized SVD is honest about its own accuracy: say so when its residual exceeds the optimum
  // by more than 1 % of the whole error (relative to the optimum alone, a full-rank optimum of ~0 would alarm).
  const total = Math.sqrt(a.curves.objectiveIdealSq[0] ?? 0);
  if (!a.preview && a.factorResidual && a.factorResidual.optimal !== null && total > 0) {
    const excess = (a.factorResidual.achieved - a.factorResidual.optimal) / total;
    if (excess > 0.01)
      warnings.push(
        `The randomized SVD's rank-${a.maxRank} factors miss the optimum by ${(100 * excess).toFixed(1)} % of the error norm.`,
      );
  }
  ui.warnings.hidden = warnings.length === 0;
  ui.warnings.replaceChildren(...warnings.map((w) => el('span', { text: w })));
  setText(ui.shownNote, `Charts: ${note}. The dashed marker is the current rank k.`);
  if (a.activation.meanAbs || a.activation.rms) ui.activation.show(a);
  else ui.activation.hide();
  setRank(view.rank, 'state');
  ui.stepFit.update(settings, a);
  requestStepFit(false);
}

function showFailure(settings: QuantSettings, error: UserFacingError): void {
  if (!ui || !view) return;
  setComputing(null, '', settings);
  const cancelled = error.code === 'cancelled';
  ui.failure.hidden = false;
  setText(
    ui.failure,
    cancelled
      ? `Cancelled${view.shown ? `; still showing ${view.shown.note}` : ''}.`
      : `Cannot analyse with ${describeSettings(settings, false)}: ${error.message}${view.shown ? ` — still showing ${view.shown.note}` : ''}`,
  );
  if (!view.shown) setText(ui.status, '');
  // The controls go back to what is on screen, so they never claim settings that have no result.
  if (view.shown) {
    view.requested = { ...view.shown.settings, rank: view.rank };
    syncControls();
  }
}

function syncControls(): void {
  if (!ui || !view) return;
  const s = view.requested;
  setSelectValue(ui.method, s.method);
  setSelectValue(ui.weight, s.weightFormat);
  setSelectValue(ui.block, String(s.blockSize));
  setSelectValue(ui.factor, s.factorFormat);
  ui.fittedSteps.checked = s.fittedSteps === true;
  ui.importanceWeights.checked = s.importanceWeights === true;
  updateBlockEnabled(s.weightFormat);
  ui.stepFit.update(s, view.shown?.analysis ?? null);
  saveState();
}

host.onMessage((msg) => {
  switch (msg.type) {
    case 'setup': {
      const saved = host.getState();
      const same = saved?.layer === msg.setup.layer.name;
      const raw = same ? saved.raw : false;
      const reassembly = same && saved.reassembly ? sanitizeReassemblyOptions(saved.reassembly) : null;
      view = {
        setup: msg.setup,
        requested: msg.setup.settings,
        shown: null,
        raw,
        rank: msg.setup.settings.rank,
        reassembly,
        restoreReassembly: reassembly !== null,
      };
      ui = buildUi(msg.setup);
      ui.rawToggle.checked = raw;
      updateMethodNote(msg.setup.methods, msg.setup.calibration);
      updateBlockEnabled(msg.setup.settings.weightFormat);
      ui.stepFit.update(msg.setup.settings, null);
      setText(ui.status, 'Waiting for the analysis…');
      saveState();
      break;
    }
    case 'computing':
      if (view && sameAnalysis(msg.settings, view.requested)) setComputing(msg.fraction, msg.step, msg.settings);
      break;
    case 'analysis':
      if (view && sameAnalysis(msg.settings, view.requested))
        showAnalysis(msg.settings, msg.analysis, msg.cached, msg.timeMs);
      break;
    case 'analysisFailed':
      if (view && sameAnalysis(msg.settings, view.requested)) showFailure(msg.settings, msg.error);
      break;
    case 'methods':
      if (view && ui) {
        view.setup = { ...view.setup, methods: msg.methods, calibration: msg.calibration };
        const usable = msg.methods.find((m) => m.name === view!.requested.method && !m.disabledReason);
        if (!usable)
          view.requested = {
            ...view.requested,
            method: msg.methods.find((m) => !m.disabledReason)?.name ?? DEFAULT_SETTINGS.method,
          };
        setOptions(ui.method, methodOptions(msg.methods), view.requested.method);
        updateMethodNote(msg.methods, msg.calibration);
      }
      break;
    case 'comparingMethods':
      if (ui) {
        const p = msg.progress;
        ui.compareButton.toggleAttribute('disabled', p.running);
        if (p.running)
          ui.comparisonBody.replaceChildren(
            el('p', { className: 'status', text: `Comparing methods: ${p.done} / ${p.total} analyses…` }),
          );
        else if (p.done < p.total)
          ui.comparisonBody.replaceChildren(el('p', { className: 'status', text: 'Comparison cancelled.' }));
      }
      break;
    case 'methodComparison':
      if (ui) {
        ui.compareButton.removeAttribute('disabled');
        ui.comparisonBody.replaceChildren(methodComparisonTable(msg.comparison));
      }
      break;
    case 'reassemblySupport':
      if (ui && view) {
        ui.reassembly.setSupport(msg.support);
        // A panel shown again (or reloaded) brings back the reassembly it showed: from the cache, or run again.
        if (msg.support.status === 'ready' && view.reassembly && view.restoreReassembly) {
          view.restoreReassembly = false;
          post({ type: 'reassemble', options: view.reassembly });
        }
      }
      break;
    case 'reassembling':
      ui?.reassembly.setRunning(msg.elapsedMs);
      break;
    case 'reassembly':
      ui?.reassembly.setResult(msg.result, msg.options, msg.timeMs, msg.cached);
      break;
    case 'reassemblyFailed':
      ui?.reassembly.setFailed(msg.error);
      break;
    case 'stepFitComputing':
      if (view && sameAnalysis(msg.settings, view.requested)) ui?.stepFit.computing(msg.rank);
      break;
    case 'stepFit':
      if (view && sameAnalysis(msg.settings, view.requested)) ui?.stepFit.show(msg.settings, msg.comparison);
      break;
    case 'stepFitFailed':
      if (view && sameAnalysis(msg.settings, view.requested)) ui?.stepFit.failed(msg.error);
      break;
    case 'error':
      showFatal(app, 'Cannot show this layer', msg.error.message);
      break;
  }
});

watchTheme((t) => {
  theme = t;
  ui?.chartsView.setTheme(t);
  ui?.activation.setTheme(t);
  ui?.reassembly.setTheme(t);
});

app.replaceChildren(el('p', { className: 'status', text: 'Loading…' }));
post({ type: 'ready' });
