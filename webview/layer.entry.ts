/**
 * Layer inspection panel: spectra and captured-energy charts, live metrics at rank k, the
 * controls (method, formats, rank), the activation view and the method comparison.
 *
 * A slider step is handled entirely here: metricsAtRank reads the precomputed curves (O(1)), the
 * metrics are written synchronously, and the charts' rank marker is redrawn on the next frame.
 * Only method and format changes go to the host, which answers with a new analysis.
 */
import { formatDuration } from '../src/shared/formatting';
import {
  DEFAULT_SETTINGS,
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
import { catchGlobalErrors, el, setText, showFatal } from './lib/dom';
import { connectToHost } from './lib/host';
import { readTheme, watchTheme } from './lib/theme';
import { ActivationView } from './layer/activationView';
import { METRIC_KEYS, metricValues } from './layer/metrics';
import { ReassemblyView } from './layer/reassemblyView';
import {
  chartsSection,
  headerSection,
  methodComparisonSection,
  metricsSection,
  rankSection,
  settingsSection,
} from './layer/sections';
import { StepFitView } from './layer/stepFitView';

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

function buildUi(setup: LayerPanelSetup) {
  const s = setup.settings;
  const header = headerSection(setup, {
    openOverview: () => post({ type: 'openOverview' }),
    compareMethods: () => post({ type: 'compareMethods' }),
    cancel: () => post({ type: 'cancel' }),
  });
  const settings = settingsSection(setup, changeSettings);
  const rank = rankSection(setup.maxRank, s.rank, setRank);
  const charts = chartsSection(theme, (raw) => {
    if (!view || !ui) return;
    view.raw = raw;
    ui.chartsView.setRaw(raw);
    saveState();
  });
  const metrics = metricsSection();
  const comparison = methodComparisonSection();
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
  app.replaceChildren(
    header.element,
    settings.element,
    settings.methodNote,
    rank.element,
    el('div', { className: 'layer-main' }, charts.element, metrics.element),
    stepFit.element,
    activation.element,
    reassembly.element,
    comparison.element,
  );
  return {
    status: header.status,
    progress: header.progress,
    failure: header.failure,
    compareButton: header.compareButton,
    cancelButton: header.cancelButton,
    controls: settings.controls,
    fittedSteps: settings.fittedSteps,
    importanceWeights: settings.importanceWeights,
    methodNote: settings.methodNote,
    slider: rank.slider,
    rankInput: rank.rankInput,
    rawToggle: charts.rawToggle,
    shownNote: charts.shownNote,
    charts: charts.element,
    chartsView: charts.chartsView(),
    metricCells: metrics.metricCells,
    warnings: metrics.warnings,
    comparisonBody: comparison.body,
    activation,
    stepFit,
    reassembly,
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
  ui.controls.block.disabled = !blockSizeApplies(weightFormat);
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
  ui.controls.show(s);
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
        ui.controls.setMethods(msg.methods, view.requested.method);
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
