/**
 * The layer panel's sections, each built with the elements the panel updates later: the header
 * (title, toolbar, status), the settings, the rank control, the charts, the metrics and the
 * method comparison. layer.entry.ts lays them out and wires their events to the host.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import type { LayerPanelSetup } from '../../src/shared/protocol/layer';
import type { QuantSettings } from '../../src/shared/quantSettings';
import { el } from '../lib/dom';
import { settingsControls } from '../lib/settingsControls';
import type { ThemeColors } from '../lib/theme';
import { METRIC_KEYS, METRIC_LABELS, type MetricKey } from './metrics';
import { SpectraCharts } from './spectraCharts';
import { STEP_FIT_OPTION_LABEL } from './stepFitView';

function toolbarButton(id: string, text: string, onClick: () => void): HTMLElement {
  const button = el('vscode-button', { id, text, attrs: { secondary: '' } });
  button.addEventListener('click', onClick);
  return button;
}

/** Title, subtitle, toolbar, status line, progress bar and failure line. */
export function headerSection(
  setup: LayerPanelSetup,
  actions: { openOverview(): void; compareMethods(): void; cancel(): void },
) {
  const status = el('p', { id: 'status', className: 'status', attrs: { role: 'status', 'aria-live': 'polite' } });
  const progress = el('vscode-progress-bar', { id: 'progress', attrs: { 'aria-label': 'Analysis progress' } });
  progress.hidden = true;
  const failure = el('p', { id: 'failure', className: 'error', attrs: { role: 'alert' } });
  failure.hidden = true;
  const compareButton = toolbarButton('compare', 'Compare Methods', actions.compareMethods);
  const cancelButton = toolbarButton('cancel', 'Cancel', actions.cancel);
  cancelButton.hidden = true;
  const l = setup.layer;
  const element = el(
    'header',
    { className: 'layer-header' },
    el('h1', { id: 'layer-name', text: l.name, title: l.name }),
    el('p', {
      className: 'subtitle',
      text: `${setup.checkpointName} · [out × in] ${l.shape[0]} × ${l.shape[1]} · ${l.dtype} · ${l.role}${l.block !== null ? ` · block ${l.block}` : ''}`,
    }),
    el(
      'div',
      { className: 'toolbar' },
      toolbarButton('open-overview', 'Checkpoint Overview', actions.openOverview),
      compareButton,
      cancelButton,
    ),
    status,
    progress,
    failure,
  );
  return { element, status, progress, failure, compareButton, cancelButton };
}

function checkbox(id: string, label: string, checked: boolean, onChange: (checked: boolean) => void) {
  const box = el('vscode-checkbox', { id, attrs: { label } });
  box.checked = checked;
  box.addEventListener('change', () => onChange(box.checked));
  return box;
}

/** Method, formats and block, the fitted-steps and importance-weights options, the method note. */
export function settingsSection(setup: LayerPanelSetup, onChange: (patch: Partial<QuantSettings>) => void) {
  const s = setup.settings;
  const controls = settingsControls(s, setup.methods, onChange);
  const fittedSteps = checkbox('fitted-steps', STEP_FIT_OPTION_LABEL, s.fittedSteps === true, (on) =>
    onChange({ fittedSteps: on }),
  );
  const importanceWeights = checkbox(
    'importance-weights',
    'Importance-weighted (imatrix from calibration)',
    s.importanceWeights === true,
    (on) => onChange({ importanceWeights: on }),
  );
  const methodNote = el('p', { id: 'method-note', className: 'note' });
  const element = el(
    'section',
    { className: 'controls', attrs: { 'aria-label': 'Settings' } },
    ...controls.fields,
    el('div', { className: 'field checkbox-field' }, fittedSteps),
    el('div', { className: 'field checkbox-field' }, importanceWeights),
  );
  return { element, controls, fittedSteps, importanceWeights, methodNote };
}

/** The rank slider and its number field (Enter or leaving the field applies it). */
export function rankSection(maxRank: number, rank: number, onRank: (k: number, from: 'slider' | 'input') => void) {
  const bounds = { min: '0', max: String(maxRank), value: String(rank) };
  const slider = el('input', {
    id: 'rank-slider',
    attrs: { type: 'range', step: '1', ...bounds, 'aria-label': 'Rank k' },
  });
  const rankInput = el('vscode-textfield', {
    id: 'rank-input',
    attrs: { type: 'number', ...bounds, 'aria-label': 'Rank k (number)' },
  });
  slider.addEventListener('input', () => onRank(Number(slider.value), 'slider'));
  rankInput.addEventListener('change', () => onRank(Number(rankInput.value), 'input'));
  rankInput.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Enter') onRank(Number(rankInput.value), 'input');
  });
  const element = el(
    'section',
    { className: 'rank', attrs: { 'aria-label': 'Rank' } },
    el('label', { text: 'Rank k', attrs: { for: 'rank-slider' } }),
    slider,
    rankInput,
    el('span', { className: 'muted', text: `of ${maxRank}` }),
  );
  return { element, slider, rankInput };
}

/** Both spectra and the captured energy, with the raw-values toggle and the caption. */
export function chartsSection(theme: ThemeColors, onRaw: (raw: boolean) => void) {
  const rawToggle = checkbox('raw-toggle', 'Raw singular values', false, onRaw);
  const spectraCanvas = el('canvas', { id: 'spectra-chart' });
  const energyCanvas = el('canvas', { id: 'energy-chart' });
  const shownNote = el('p', { id: 'shown', className: 'caption' });
  const element = el(
    'section',
    { className: 'charts', attrs: { 'aria-label': 'Spectra' } },
    el('div', { className: 'chart-head' }, el('h2', { text: 'Singular values of the error' }), rawToggle),
    el('div', { className: 'chart-box' }, spectraCanvas),
    el('h2', { text: 'Captured error energy' }),
    el('div', { className: 'chart-box' }, energyCanvas),
    shownNote,
  );
  // Built after the canvases are in a section, so Chart.js measures them where they will be.
  const chartsView = () => new SpectraCharts(spectraCanvas, energyCanvas, theme);
  return { element, rawToggle, shownNote, chartsView };
}

/** The metrics at rank k and the warnings about the analysis. */
export function metricsSection() {
  const metricCells = {} as Record<MetricKey, HTMLElement>;
  const metrics = el('dl', { id: 'metrics', className: 'metrics' });
  for (const key of METRIC_KEYS) {
    metricCells[key] = el('dd', { attrs: { 'data-metric': key }, text: '—' });
    metrics.append(el('dt', { text: METRIC_LABELS[key] }), metricCells[key]);
  }
  const warnings = el('p', { id: 'warnings', className: 'warning' });
  warnings.hidden = true;
  const element = el(
    'aside',
    { className: 'metrics-box', attrs: { 'aria-label': 'Metrics at rank k' } },
    metrics,
    warnings,
  );
  return { element, metricCells, warnings };
}

/** Every method at the same formats and rank, filled in on "Compare Methods". */
export function methodComparisonSection() {
  const body = el(
    'div',
    { id: 'comparison-body' },
    el('p', {
      className: 'muted',
      text: 'Runs every method at these formats and rank — the same bit budget — and lists their errors.',
    }),
  );
  const element = el(
    'section',
    { id: 'comparison', attrs: { 'aria-labelledby': 'comparison-title' } },
    el('h2', { id: 'comparison-title', text: 'Method comparison' }),
    body,
  );
  return { element, body };
}
