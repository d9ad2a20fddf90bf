/**
 * The checkpoint comparison panel: per paired linear layer, ΔW = W₂ − W₁ seen as a quantization
 * error (its size relative to W₁, its largest entry, its spectrum), a verdict at a tolerance the
 * user edits (recomputed here, no worker call), summary counts, a sortable table and the spectrum
 * of the selected layer's difference.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-label/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { comparisonLabels, parseComparisonPanelState, sanitizeComparisonView } from '../src/shared/protocol/comparison';
import { formatDuration } from '../src/shared/formatting';
import type {
  CheckpointComparison,
  HostToComparison,
  ComparisonToHost,
  ComparisonPanelState,
  ComparisonView,
} from '../src/shared/protocol/comparison';
import type { JobProgress, UserFacingError } from '../src/shared/protocol/common';
import { DiffSpectrumChart } from './comparison/diffSpectrumChart';
import { DifferencesTable } from './comparison/differencesTable';
import { chartLayer, diffCounts, formatRelative, parseTolerance } from './lib/checkpointDiff';
import { catchGlobalErrors, el, labelledField, setText, showFatal } from './lib/dom';
import { connectToHost } from './lib/host';
import { readTheme, watchTheme } from './lib/theme';

const host = connectToHost<HostToComparison, ComparisonToHost, ComparisonPanelState>();
const app = document.getElementById('app')!;
catchGlobalErrors(app);

const post = (m: ComparisonToHost) => host.post(m);

interface State {
  a: string;
  b: string;
  view: ComparisonView;
  comparison: CheckpointComparison | null;
  timeMs: number;
}

let state: State | null = null;
let ui: ReturnType<typeof buildUi> | null = null;
let theme = readTheme();

function save(): void {
  if (state) host.setState({ version: 1, a: state.a, b: state.b, view: state.view });
}

function buildUi(a: string, b: string, view: ComparisonView) {
  const labels = comparisonLabels(a, b);
  const button = (id: string, text: string, onClick: () => void, secondary = true) => {
    const e = el('vscode-button', { id, text, ...(secondary ? { attrs: { secondary: '' } } : {}) });
    e.addEventListener('click', onClick);
    return e;
  };
  const recompute = button('recompute', 'Recompute', () => post({ type: 'recompute' }), false);
  const cancel = button('cancel', 'Cancel', () => post({ type: 'cancel' }));
  cancel.hidden = true;
  const progressBar = el('vscode-progress-bar', { id: 'progress', attrs: { 'aria-label': 'Comparison progress' } });
  progressBar.hidden = true;
  const status = el('p', { id: 'status', className: 'status', attrs: { role: 'status', 'aria-live': 'polite' } });
  const error = el('p', { id: 'error', className: 'error', attrs: { role: 'alert' } });
  error.hidden = true;
  const counts = el('p', { id: 'counts', className: 'counts' });
  const notes = el('ul', { id: 'pairing-notes', className: 'notes' });

  const tolerance = el('vscode-textfield', {
    id: 'tolerance',
    attrs: { value: String(view.tolerance), 'aria-label': 'Tolerance, relative to ‖W₁‖' },
  });
  const toleranceNote = el('span', { id: 'tolerance-note', className: 'muted' });
  const onTolerance = () => {
    const t = parseTolerance(tolerance.value ?? '');
    if (t === null) {
      setText(toleranceNote, 'Type a non-negative number (0.005) or a percentage (0.5 %).');
      return;
    }
    changeView({ tolerance: t });
  };
  tolerance.addEventListener('input', onTolerance);
  tolerance.addEventListener('change', onTolerance);
  const changedOnly = el('vscode-checkbox', {
    id: 'changed-only',
    attrs: { label: 'Changed layers only' },
  });
  changedOnly.checked = view.changedOnly;
  changedOnly.addEventListener('change', () => changeView({ changedOnly: changedOnly.checked }));

  const table = new DifferencesTable({
    select: (name) => changeView({ selected: name }),
    sort: (sort) => changeView({ sort }),
  });
  const chart = new DiffSpectrumChart(theme);
  chart.show(null);
  const results = el(
    'div',
    { id: 'results' },
    counts,
    notes,
    el(
      'div',
      { className: 'controls' },
      labelledField('Tolerance ‖ΔW‖/‖W₁‖', tolerance),
      el('div', { className: 'field tolerance-note' }, toleranceNote),
      el('div', { className: 'field checkbox-field' }, changedOnly),
    ),
    table.element,
    chart.element,
  );
  results.hidden = true;

  app.replaceChildren(
    el('h1', { text: `${labels.a} ↔ ${labels.b}` }),
    el(
      'dl',
      { className: 'facts' },
      el('dt', { text: 'W₁' }),
      el('dd', { id: 'path-a', text: a }),
      el('dt', { text: 'W₂' }),
      el('dd', { id: 'path-b', text: b }),
    ),
    el('p', {
      className: 'caption',
      text: 'Each linear layer of W₁ is paired with the one of W₂ with the same name (or block and role, and shape), and ΔW = W₂ − W₁ is read as if it were a quantization error.',
    }),
    el(
      'div',
      { className: 'toolbar' },
      recompute,
      cancel,
      button('open-a', `Open ${labels.a}`, () => post({ type: 'openOverview', which: 'a' })),
      button('open-b', `Open ${labels.b}`, () => post({ type: 'openOverview', which: 'b' })),
    ),
    progressBar,
    status,
    error,
    results,
  );
  return {
    recompute,
    cancel,
    progressBar,
    status,
    error,
    counts,
    notes,
    tolerance,
    toleranceNote,
    changedOnly,
    table,
    chart,
    results,
  };
}

function changeView(patch: Partial<ComparisonView>): void {
  if (!state) return;
  state.view = { ...state.view, ...patch };
  save();
  render();
}

function render(): void {
  if (!state || !ui) return;
  const c = state.comparison;
  ui.results.hidden = c === null;
  if (!c) return;
  const { view } = state;
  const n = diffCounts(c.layers, view.tolerance);
  const count = (what: keyof typeof n, text: string) =>
    el('span', { className: `count verdict-${what}`, text: `${n[what]} ${text}`, attrs: { 'data-count': what } });
  ui.counts.replaceChildren(
    el('strong', { text: `${c.layers.length} paired layers: ` }),
    count('changed', 'changed'),
    ' · ',
    count('unchanged', 'unchanged'),
    ' · ',
    count('identical', 'identical'),
    el('span', { className: 'muted', text: ` (compared in ${formatDuration(state.timeMs)})` }),
  );
  setText(
    ui.toleranceNote,
    `“changed” above ${formatRelative(view.tolerance)} of ‖W₁‖${view.tolerance === c.tolerance ? '' : `; the default is ${formatRelative(c.tolerance)}`}`,
  );
  const notes: string[] = [];
  if (c.layers.length === 0)
    notes.push('No linear layer of W₁ pairs with one of W₂ (same name, or same block and role, and shape).');
  if (c.shapeMismatch.length)
    notes.push(
      `Shapes differ, not compared: ${c.shapeMismatch.map((m) => `${m.a} [${m.shapeA.join('×')}] vs [${m.shapeB.join('×')}]`).join('; ')}`,
    );
  if (c.onlyInA.length) notes.push(`Only in W₁: ${c.onlyInA.join(', ')}`);
  if (c.onlyInB.length) notes.push(`Only in W₂: ${c.onlyInB.join(', ')}`);
  ui.notes.replaceChildren(...notes.map((t) => el('li', { text: t })));
  const shown = chartLayer(c.layers, view.selected);
  ui.table.render(c.layers, view, shown?.name ?? null);
  ui.chart.show(shown);
}

function showProgress(p: JobProgress): void {
  if (!ui) return;
  ui.progressBar.hidden = !p.running;
  ui.cancel.hidden = !p.running;
  ui.recompute.toggleAttribute('disabled', p.running);
  if (p.running) {
    ui.error.hidden = true;
    ui.progressBar.max = Math.max(1, p.total);
    ui.progressBar.value = p.done;
    setText(
      ui.status,
      p.total === 0
        ? 'Opening the checkpoints…'
        : `Comparing: ${p.done} / ${p.total} layers${p.current ? ` · ${p.current}` : ''}${p.etaMs !== null && p.done < p.total ? ` · ETA ${formatDuration(p.etaMs)}` : ''}`,
    );
  } else if (state?.comparison === null) {
    setText(ui.status, p.total > 0 && p.done < p.total ? `Stopped at ${p.done} / ${p.total} layers.` : '');
  }
}

function showError(error: UserFacingError): void {
  if (!ui) return;
  ui.progressBar.hidden = true;
  ui.cancel.hidden = true;
  ui.recompute.removeAttribute('disabled');
  if (error.code === 'cancelled') {
    setText(ui.status, 'Cancelled. Recompute to compare again.');
    return;
  }
  ui.error.hidden = false;
  setText(ui.error, `Cannot compare: ${error.message}`);
}

host.onMessage((msg) => {
  switch (msg.type) {
    case 'setup': {
      const saved = parseComparisonPanelState(host.getState());
      const view = saved && saved.a === msg.a && saved.b === msg.b ? saved.view : sanitizeComparisonView(msg.view);
      state = { a: msg.a, b: msg.b, view, comparison: null, timeMs: 0 };
      ui = buildUi(msg.a, msg.b, view);
      save();
      break;
    }
    case 'progress':
      showProgress(msg.progress);
      break;
    case 'comparison':
      if (!state || !ui) break;
      state.comparison = msg.comparison;
      state.timeMs = msg.timeMs;
      ui.error.hidden = true;
      setText(ui.status, '');
      render();
      break;
    case 'error':
      if (ui) showError(msg.error);
      else showFatal(app, 'Cannot compare these checkpoints', msg.error.message);
      break;
  }
});

watchTheme((t) => {
  theme = t;
  ui?.chart.setTheme(t);
});

app.replaceChildren(el('p', { className: 'status', text: 'Loading…' }));
post({ type: 'ready' });
