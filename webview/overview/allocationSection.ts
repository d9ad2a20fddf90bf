/**
 * The overview's "Rank allocation" section: candidate formats and the largest rank go to the host,
 * which has the worker compute every layer's (format, rank) curves once; from then on every budget
 * or objective change re-runs the allocation here, on those curves (allocation.ts is pure): the
 * greedy alone while the budget slider moves, the greedy with the exact DP's bound once it rests.
 * Shows the ranks (and formats) per layer against the uniform rank at the same budget, the error
 * against bits per weight, the comparison table and the greedy's gap to the optimum, and offers the
 * two exports (recipe, quantized checkpoint) of the allocation shown.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-multi-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import type { AllocationResult } from '../../src/engine/methods/allocation';
import {
  OBJECTIVE_LABELS,
  allocationFormatLabel,
  availableObjectives,
  defaultMaxRank,
  usableGoal,
} from '../../src/shared/allocation';
import { sanitizeAllocationRequest } from '../../src/shared/protocol/overview';
import { formatBits, formatDuration, formatPercent, shortLayerName } from '../../src/shared/formatting';
import { METHODS } from '../../src/shared/quantSettings';
import type {
  AllocationCurves,
  AllocationObjective,
  AllocationRequest,
  AllocationSupport,
  AllocationGoal,
  OverviewToHost,
} from '../../src/shared/protocol/overview';
import type { JobProgress, UserFacingError } from '../../src/shared/protocol/common';
import {
  budgetFieldValue,
  budgetInBoth,
  budgetOf,
  budgetRange,
  cliAllocateLine,
  allocationVsUniform,
  runAllocation,
  type BudgetRange,
  type SummaryErrors,
} from '../lib/allocationModel';
import { selectField, setOptions, setSelectValue } from '../lib/controls';
import { el, headedTable, labelledField, setText } from '../lib/dom';
import type { ThemeColors } from '../lib/theme';
import { AllocationCharts } from './allocationCharts';

/** Slider steps across the budget range. */
const SLIDER_STEPS = 1000;
/** A resting budget is reported to the host (and saved) this long after the last change. */
const SETTLE_MS = 300;

const sci = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : v.toExponential(3));
const mib = (v: number) => `${v.toFixed(v < 10 ? 3 : 1)} MiB`;

export interface AllocationHost {
  post(m: OverviewToHost): void;
  /** The controls changed: the overview saves them with setState. */
  save(request: AllocationRequest, view: AllocationGoal | null): void;
}

export class AllocationSection {
  readonly element: HTMLElement;
  private support: AllocationSupport | null = null;
  private curves: AllocationCurves | null = null;
  private view: AllocationGoal | null = null;
  private range: BudgetRange | null = null;
  private result: AllocationResult | null = null;
  /** The request the controls show: what Compute Allocation sends. */
  private request: AllocationRequest | null;
  /**
   * The controls hold the user's own choice (changed since the last computation, or restored from
   * before a reload): curves arriving then (the checkpoint's last allocation, pushed to every
   * overview) do not replace it, and the section says the curves were computed for another request.
   */
  private controlsEdited: boolean;
  private running = false;
  private settleTimer = 0;

  private readonly formats = el('vscode-multi-select', {
    id: 'allocation-formats',
    attrs: { 'aria-label': 'Candidate weight formats' },
  });
  private readonly formatsNote = el('p', { id: 'allocation-formats-note', className: 'caption' });
  /** The candidate formats ticked: set from the request shown and from the select's change events. */
  private chosenFormats: string[] = [];
  /** The format choices the options were built from. */
  private choicesKey = '';
  private readonly maxRank = el('vscode-textfield', {
    id: 'allocation-max-rank',
    attrs: { type: 'number', min: '0', max: '512', value: '64', 'aria-label': 'Largest rank considered' },
  });
  private readonly sensitivity = el('vscode-checkbox', {
    id: 'allocation-sensitivity',
    attrs: { label: 'Weight each layer by its measured end-to-end sensitivity' },
  });
  private readonly fused = el('vscode-checkbox', {
    id: 'allocation-fused',
    attrs: {
      label:
        'Fused groups: one format for q/k/v, for gate/up and for a MoE block’s experts (as vLLM and TensorRT-LLM fuse them)',
    },
  });
  private readonly computeButton = el('vscode-button', { id: 'allocation-compute', text: 'Compute Allocation' });
  private readonly cancelButton = el('vscode-button', {
    id: 'allocation-cancel',
    text: 'Cancel',
    attrs: { secondary: '' },
  });
  private readonly progress = el('vscode-progress-bar', {
    id: 'allocation-progress',
    attrs: { 'aria-label': 'Allocation progress' },
  });
  private readonly status = el('p', {
    id: 'allocation-status',
    className: 'status',
    attrs: { role: 'status', 'aria-live': 'polite' },
  });
  private readonly failure = el('p', { id: 'allocation-failure', className: 'error', attrs: { role: 'alert' } });
  private readonly objectiveNote = el('p', { id: 'allocation-objective-note', className: 'note' });
  private readonly staleNote = el('p', { id: 'allocation-stale', className: 'warning' });

  private readonly budget = el('vscode-textfield', {
    id: 'allocation-budget',
    attrs: { type: 'number', step: 'any', min: '0', 'aria-label': 'Budget' },
  });
  private readonly unit = selectField(
    'allocation-unit',
    'Unit',
    [
      { value: 'bits', label: 'bits per weight' },
      { value: 'mib', label: 'MiB (allocated layers)' },
    ],
    'bits',
    (v) => this.changeUnit(v === 'mib' ? 'mib' : 'bits'),
  );
  private readonly objective = selectField('allocation-objective', 'Objective', [], 'weight-relative', (v) =>
    this.changeObjective(v as AllocationObjective),
  );
  private readonly slider = el('input', {
    id: 'allocation-budget-slider',
    attrs: { type: 'range', min: '0', max: String(SLIDER_STEPS), step: '1', 'aria-label': 'Budget (bits per weight)' },
  });
  private readonly budgetNote = el('p', { id: 'allocation-budget-note', className: 'caption' });
  private readonly budgetError = el('p', {
    id: 'allocation-budget-error',
    className: 'error',
    attrs: { role: 'alert' },
  });
  private readonly summary = el('div', { id: 'allocation-summary' });
  private readonly gap = el('p', { id: 'allocation-gap', className: 'note' });
  private readonly charts: AllocationCharts;
  private readonly e2eNote = el('p', { id: 'allocation-e2e', className: 'note' });
  private readonly body = el('div', { id: 'allocation-body' });

  constructor(
    theme: ThemeColors,
    private readonly host: AllocationHost,
    saved: { request: AllocationRequest; view: AllocationGoal | null } | undefined,
  ) {
    this.request = saved ? sanitizeAllocationRequest(saved.request) : null;
    this.controlsEdited = this.request !== null;
    this.view = saved?.view ?? null;
    this.charts = new AllocationCharts(theme);
    const exportRecipe = el('vscode-button', { id: 'allocation-export-recipe', text: 'Export Recipe…' });
    const exportCheckpoint = el('vscode-button', {
      id: 'allocation-export-checkpoint',
      text: 'Export Quantized Checkpoint with This Recipe…',
      attrs: { secondary: '' },
    });
    exportRecipe.addEventListener('click', () => this.exportWith('exportRecipe'));
    exportCheckpoint.addEventListener('click', () => this.exportWith('exportWithRecipe'));
    this.cancelButton.hidden = true;
    this.progress.hidden = true;
    this.failure.hidden = true;
    this.staleNote.hidden = true;
    this.budgetError.hidden = true;
    this.body.hidden = true;
    this.body.append(
      el('div', { className: 'controls' }, labelledField('Budget', this.budget), this.unit.field, this.objective.field),
      this.fused,
      el('div', { className: 'budget-slider' }, this.slider),
      this.budgetNote,
      this.budgetError,
      this.staleNote,
      this.objectiveNote,
      this.summary,
      this.gap,
      el('h3', { text: 'Rank per layer: allocated and uniform at the same budget' }),
      el('div', { className: 'chart-box' }, this.charts.rankCanvas),
      el('h3', { text: 'Error against bits per weight' }),
      el('div', { className: 'chart-box small' }, this.charts.tradeoffCanvas),
      this.e2eNote,
      el('div', { className: 'toolbar' }, exportRecipe, exportCheckpoint),
    );
    this.element = el(
      'section',
      { id: 'allocation', className: 'allocation', attrs: { 'aria-labelledby': 'allocation-title' } },
      el('h2', { id: 'allocation-title', text: 'Rank allocation under a budget' }),
      el('p', {
        className: 'caption',
        text: 'Chooses a rank per layer — and a weight format, when several candidates are given — that minimises the summed error of the layers under a memory budget (W_q, A and B included), and compares it with the uniform rank at the same budget. The curves are computed once; moving the budget re-allocates at once.',
      }),
      el(
        'div',
        { className: 'controls' },
        labelledField('Candidate formats', this.formats, 'field wide'),
        labelledField('Largest rank', this.maxRank),
        this.computeButton,
        this.cancelButton,
      ),
      this.formatsNote,
      this.sensitivity,
      this.progress,
      this.status,
      this.failure,
      this.body,
    );
    this.formats.addEventListener('change', () => {
      const raw = this.formats.value;
      this.chosenFormats = Array.isArray(raw) ? raw : [raw];
      this.onRequestChanged();
    });
    this.maxRank.addEventListener('change', () => this.onRequestChanged());
    this.sensitivity.addEventListener('change', () => this.onRequestChanged());
    this.fused.addEventListener('change', () => this.changeFused(this.fused.checked));
    this.computeButton.addEventListener('click', () => this.compute());
    this.cancelButton.addEventListener('click', () => this.host.post({ type: 'command', command: 'cancel' }));
    this.budget.addEventListener('change', () => this.onBudgetField());
    this.budget.addEventListener('keydown', (e: KeyboardEvent) => {
      if (e.key === 'Enter') this.onBudgetField();
    });
    this.slider.addEventListener('input', () => this.onSlider(false));
    this.slider.addEventListener('change', () => this.onSlider(true));
    setText(this.status, 'Not computed yet.');
  }

  setTheme(theme: ThemeColors): void {
    this.charts.setTheme(theme);
    this.renderCharts(true);
  }

  /** What the checkpoint allows, with its current settings (sent with every settings change). */
  setSupport(support: AllocationSupport): void {
    this.support = support;
    const fallback: AllocationRequest = {
      formats: [support.formatChoices[0]?.value ?? 'mxint4'],
      maxRank: defaultMaxRank(support.settings.rank),
      sensitivity: false,
    };
    const request = this.request ?? fallback;
    const known = new Set(support.formatChoices.map((c) => c.value));
    const formats = request.formats.filter((f) => known.has(f));
    this.request = { ...request, formats: formats.length ? formats : fallback.formats };
    const why = support.sensitivityUnavailable;
    this.sensitivity.disabled = why !== null;
    this.sensitivity.title = why ? `Unavailable: ${why}` : 'Runs the model once per layer on a few calibration inputs';
    this.buildFormatOptions(support);
    this.showRequest(this.request);
    this.updateFormatsNote();
    this.renderNotes();
  }

  private buildFormatOptions(support: AllocationSupport): void {
    const selected = new Set(this.request?.formats ?? []);
    // Support arrives with every settings change, often while the user has the list open: options
    // are rebuilt only when the choices differ, and the selection set only when it differs, so a
    // click on an option is never lost to a replaced element.
    const choicesKey = support.formatChoices.map((c) => `${c.value}\u0000${c.label}`).join('\u0001');
    if (choicesKey !== this.choicesKey) {
      this.choicesKey = choicesKey;
      this.formats.replaceChildren(
        ...support.formatChoices.map((c) => {
          const opt = el('vscode-option', { text: c.label, attrs: { value: c.value } });
          if (selected.has(c.value)) opt.selected = true;
          return opt;
        }),
      );
      this.formats.value = [...selected];
      this.chosenFormats = [...selected];
    }
  }

  /** Puts a request on the controls, touching only what differs (the list may be open). */
  private showRequest(request: AllocationRequest): void {
    this.request = request;
    if (this.choicesKey && !sameMembers(this.chosenFormats, request.formats)) this.formats.value = request.formats;
    // The element takes options that arrive with the same task as slotted children only later (on
    // its slotchange): until then its value reads empty although it will show them selected. What
    // is chosen is kept here, so the note, the button and the request agree with what is shown.
    this.chosenFormats = [...request.formats];
    if (this.maxRank.value !== String(request.maxRank)) this.maxRank.value = String(request.maxRank);
    this.sensitivity.checked = !this.sensitivity.disabled && request.sensitivity;
  }

  private readRequest(): AllocationRequest | null {
    return sanitizeAllocationRequest({
      formats: this.chosenFormats,
      maxRank: Number(this.maxRank.value),
      sensitivity: this.sensitivity.checked && !this.sensitivity.disabled,
    });
  }

  private onRequestChanged(): void {
    const r = this.readRequest();
    if (r) this.request = r;
    this.controlsEdited = true;
    this.updateFormatsNote();
    this.renderNotes();
    if (this.request) this.host.save(this.request, this.view);
  }

  private updateFormatsNote(): void {
    const formats = this.readRequest()?.formats ?? [];
    const method = this.support ? METHODS[this.support.settings.method].label : '';
    setText(
      this.formatsNote,
      formats.length
        ? `${formats.length === 1 ? 'Rank allocation in' : 'Ranks and formats from'} ${formats.map(allocationFormatLabel).join(', ')} · ${method}, A/B ${this.support?.settings.factorFormat.toUpperCase() ?? ''} (the overview's settings). Each candidate format is one analysis of every layer.`
        : 'Choose at least one candidate weight format.',
    );
    this.computeButton.toggleAttribute('disabled', formats.length === 0 || this.running);
  }

  private compute(): void {
    const request = this.readRequest();
    if (!request) {
      this.updateFormatsNote();
      return;
    }
    this.request = request;
    this.controlsEdited = false;
    this.failure.hidden = true;
    this.host.save(request, this.view);
    this.host.post({ type: 'computeAllocation', request, view: this.view });
  }

  setProgress(p: JobProgress): void {
    this.running = p.running;
    this.progress.hidden = !p.running;
    this.cancelButton.hidden = !p.running;
    this.computeButton.toggleAttribute('disabled', p.running);
    this.progress.max = Math.max(1, p.total);
    this.progress.value = p.done;
    if (p.running) {
      setText(
        this.status,
        `Computing the curves: ${p.done} / ${p.total} layers${p.current ? ` · ${shortLayerName(p.current)}` : ''}${p.etaMs !== null ? ` · ETA ${formatDuration(p.etaMs)}` : ''}`,
      );
    } else if (p.done < p.total) {
      setText(
        this.status,
        `Stopped at ${p.done} / ${p.total} layers${this.curves ? '; the previous curves stay' : ''}.`,
      );
    }
  }

  setFailed(error: UserFacingError): void {
    this.failure.hidden = false;
    setText(this.failure, `Cannot compute the allocation: ${error.message}`);
  }

  /** New curves from the host, with the budget and objective to show them at. */
  setCurves(curves: AllocationCurves, view: AllocationGoal | null): void {
    this.curves = curves;
    if (!this.controlsEdited) {
      this.showRequest(curves.request);
      this.updateFormatsNote();
    }
    this.body.dataset.candidates = [...curves.request.formats].sort().join(',');
    this.failure.hidden = true;
    this.range = budgetRange(curves.layers);
    const start = view ?? this.view;
    this.view = start ? usableGoal(start, curves.layers) : null;
    if (!this.view) return;
    this.body.hidden = false;
    setText(
      this.status,
      `Curves of ${curves.layers.length} layers × ${curves.request.formats.length} format${curves.request.formats.length > 1 ? 's' : ''}, ranks 0…${curves.request.maxRank}, computed in ${formatDuration(curves.timeMs)}.`,
    );
    setOptions(
      this.objective.select,
      availableObjectives(curves.layers).map((o) => ({ value: o, label: o, description: OBJECTIVE_LABELS[o] })),
      this.view.objective,
    );
    setSelectValue(this.unit.select, this.view.unit);
    this.fused.checked = !!this.view.fused;
    this.recompute(true, true);
    if (this.request) this.host.save(this.request, this.view);
  }

  private changeUnit(unit: AllocationGoal['unit']): void {
    if (!this.view || !this.curves) return;
    const both = budgetInBoth(this.curves.layers, this.view.budget);
    const budget = unit === 'mib' ? { bytes: both.mib * 2 ** 20 } : { bitsPerWeight: both.bitsPerWeight };
    this.view = { ...this.view, unit, budget };
    this.recompute(true, false);
  }

  /** Fusion changes which points are allowed, not the curves: re-allocated here at once. */
  private changeFused(fused: boolean): void {
    if (!this.view) return;
    this.view = { ...this.view, fused };
    this.recompute(true, true);
  }

  private changeObjective(objective: AllocationObjective): void {
    if (!this.view) return;
    this.view = { ...this.view, objective };
    this.recompute(true, true);
  }

  private onBudgetField(): void {
    if (!this.view) return;
    const budget = budgetOf(Number(this.budget.value), this.view.unit);
    if (!budget) return;
    this.view = { ...this.view, budget };
    this.recompute(true, false);
  }

  /** The slider runs in bits per weight over the feasible range. */
  private onSlider(resting: boolean): void {
    if (!this.view || !this.range) return;
    const { minBitsPerWeight: lo, maxBitsPerWeight: hi } = this.range;
    const bits = lo + ((hi - lo) * Number(this.slider.value)) / SLIDER_STEPS;
    const budget = this.view.unit === 'mib' ? { bytes: (bits * this.range.weights) / 8 } : { bitsPerWeight: bits };
    this.view = { ...this.view, budget };
    this.recompute(resting, false, true);
  }

  /**
   * Re-runs the allocation at the current view. `exact`: with the DP bound. `tradeoff`: the
   * objective changed, so the error-against-bits curve is recomputed too.
   */
  private recompute(exact: boolean, tradeoff: boolean, fromSlider = false): void {
    const curves = this.curves;
    const view = this.view;
    if (!curves || !view || !this.range) return;
    const both = budgetInBoth(curves.layers, view.budget);
    const fieldValue = budgetFieldValue(curves.layers, view);
    const shown = Number(fieldValue.toFixed(4));
    if (Number(this.budget.value) !== shown) this.budget.value = String(shown);
    const { minBitsPerWeight: lo, maxBitsPerWeight: hi } = this.range;
    if (!fromSlider) {
      const pos = hi > lo ? Math.round(((both.bitsPerWeight - lo) / (hi - lo)) * SLIDER_STEPS) : 0;
      this.slider.value = String(Math.max(0, Math.min(SLIDER_STEPS, pos)));
    }
    setText(
      this.budgetNote,
      `${formatBits(both.bitsPerWeight)} bits per weight = ${mib(both.mib)} for the ${curves.layers.length} allocated layers (feasible: ${formatBits(lo)} … ${formatBits(hi)} bits per weight).`,
    );
    const outcome = runAllocation(curves.layers, view, exact);
    this.budgetError.hidden = outcome.ok;
    if (!outcome.ok) {
      setText(this.budgetError, outcome.message);
    } else {
      this.result = outcome.result;
      this.renderSummary(outcome.result, exact);
    }
    this.renderCharts(tradeoff);
    this.renderNotes();
    window.clearTimeout(this.settleTimer);
    this.settleTimer = window.setTimeout(() => {
      if (!this.view) return;
      this.host.post({ type: 'allocationView', view: this.view });
      if (this.request) this.host.save(this.request, this.view);
    }, SETTLE_MS);
  }

  private renderSummary(r: AllocationResult, exact: boolean): void {
    const curves = this.curves!;
    const c = allocationVsUniform(curves.layers, r);
    const sourceLabel = { greedy: 'greedy', exact: 'exact DP', uniform: 'uniform rank, best here' }[c.allocatedSource];
    const row = (label: string, s: SummaryErrors, id: string, extra = '') =>
      el(
        'tr',
        { attrs: { 'data-row': id } },
        el('td', { text: label }),
        el('td', { className: 'num', text: formatBits(s.bitsPerWeight) }),
        el('td', { className: 'num', text: mib(s.mib) }),
        el('td', { className: 'num', text: sci(s.objective) }),
        el('td', { className: 'num', text: sci(s.weightRelSum) }),
        el('td', { className: 'num', text: formatPercent(s.weightError) }),
        el('td', { className: 'num', text: sci(s.outputRelSum) }),
        el('td', { className: 'num', text: formatPercent(s.meanOutputError) }),
        el('td', { className: 'note', text: extra }),
      );
    const rows = [row(`Allocated (${sourceLabel})`, c.allocated, 'allocated')];
    if (c.uniform) {
      rows.push(
        row(`Uniform rank ${c.uniform.rank} (${allocationFormatLabel(c.uniform.format)})`, c.uniform, 'uniform'),
      );
    }
    const head = [
      ['', ''],
      ['Bits/w', 'A·B included'],
      ['Size', 'of the allocated layers'],
      ['Objective', OBJECTIVE_LABELS[r.objective]],
      ['Σ rel. W err²', 'Σ over layers of ‖ΔW‖²/‖W‖²'],
      ['W err', '√(Σ‖ΔW‖² / Σ‖W‖²)'],
      ['Σ rel. out err²', 'Σ over layers of tr(ΔW R ΔWᵀ)/tr(W R Wᵀ) (needs calibration)'],
      ['Mean out err', 'mean over layers of the relative output error'],
      ['', ''],
    ] as const;
    this.summary.replaceChildren(
      headedTable(
        'allocation-table',
        'Allocated against uniform at the same budget',
        head.map(([text, title], i) => ({ text, title, num: i > 0 && i < head.length - 1 })),
        rows,
      ),
    );
    const ratio =
      c.ratio === null
        ? 'No uniform rank of the first format fits this budget.'
        : c.ratio < 1
          ? `The allocation's objective is ${formatPercent(1 - c.ratio, 1)} below the uniform rank's at the same budget.`
          : c.ratio === 1
            ? 'The allocation equals the uniform rank here.'
            : `The uniform rank does better here (×${c.ratio.toFixed(3)}).`;
    const bound = exact
      ? `Greedy within ${formatPercent(c.greedyGap, 2)} of the optimum (optimum ≥ ${sci(c.lowerBound)}: the LP relaxation and an exact DP over ${r.exact?.bins ?? 0} budget steps).`
      : `Greedy within ${formatPercent(c.greedyGap, 2)} of the LP bound (the exact DP runs once the budget rests).`;
    setText(this.gap, `${ratio} ${bound}`);
    this.gap.dataset.ratio = c.ratio === null ? '' : String(c.ratio);
  }

  private renderCharts(tradeoff: boolean): void {
    if (this.curves && this.result && this.view) this.charts.render(this.curves, this.result, this.view, tradeoff);
  }

  private renderNotes(): void {
    const curves = this.curves;
    const view = this.view;
    const support = this.support;
    if (!curves || !view || !support) return;
    const notes: string[] = [`Objective: ${OBJECTIVE_LABELS[view.objective]}.`];
    if (view.objective.startsWith('weight') && !support.calibrated)
      notes.push(
        'Without calibration the allocation minimises the weight error; set calibration for the output error.',
      );
    if (curves.sensitivities?.length) {
      const top = [...curves.sensitivities].sort((a, b) => b.sensitivity - a.sensitivity).slice(0, 3);
      notes.push(
        `Measured sensitivities (model deviation per unit of relative layer error), largest: ${top.map((s) => `${shortLayerName(s.name)} ${s.sensitivity.toPrecision(3)}`).join(', ')}.`,
      );
    } else if (support.sensitivityUnavailable) {
      notes.push(
        `The sensitivity-weighted objective (each layer's error weighted by its measured effect on the model's output) is unavailable: ${support.sensitivityUnavailable}.`,
      );
    } else {
      notes.push(
        'Tick "Weight each layer by its measured end-to-end sensitivity" and compute again for the sensitivity-weighted objective.',
      );
    }
    const method = METHODS[curves.settings.method];
    if (!method.corrects)
      notes.push(
        `The method is ${method.label} (no correction): only the weight formats are allocated, every rank is 0.`,
      );
    setText(this.objectiveNote, notes.join(' '));

    const stale: string[] = [];
    const s = support.settings;
    if (s.method !== curves.settings.method || s.factorFormat !== curves.settings.factorFormat)
      stale.push(
        `the overview's method or A/B format changed (curves: ${METHODS[curves.settings.method].label}, A/B ${curves.settings.factorFormat.toUpperCase()})`,
      );
    if ((support.calibration ?? null) !== (curves.calibration ?? null)) stale.push('the calibration changed');
    const asked = this.request;
    if (
      asked &&
      (!sameMembers(asked.formats, curves.request.formats) ||
        asked.maxRank !== curves.request.maxRank ||
        asked.sensitivity !== curves.request.sensitivity)
    )
      stale.push(
        `the candidates changed (curves: ${curves.request.formats.map(allocationFormatLabel).join(', ')}, ranks 0…${curves.request.maxRank}${curves.request.sensitivity ? ', sensitivity-weighted' : ''})`,
      );
    this.staleNote.hidden = stale.length === 0;
    setText(
      this.staleNote,
      stale.length ? `Computed before ${stale.join(' and ')}: Compute Allocation again to follow.` : '',
    );

    this.e2eNote.replaceChildren(
      el('span', {
        text: support.evaluable
          ? 'End-to-end metric (CER, perplexity) of this allocation and of the uniform rank, on your evaluation data: '
          : 'End-to-end metric: only for models Quant Lens can run (ONNX), with ',
      }),
      el('code', {
        id: 'allocation-cli',
        text: support.evaluable ? cliAllocateLine(support, curves, view) : 'quant-lens allocate … --eval-data <data>',
      }),
      el('span', {
        text: support.evaluable
          ? ' (the same allocation, then both evaluated).'
          : '. Here, compare the output errors above, or export the checkpoint with this recipe and evaluate it in your own harness.',
      }),
    );
  }

  private exportWith(type: 'exportRecipe' | 'exportWithRecipe'): void {
    if (!this.view) return;
    this.host.post({ type, view: this.view });
  }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
