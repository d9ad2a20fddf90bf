/**
 * The layer panel's "Fitted step sizes" section (INT formats): how much fitting each group's step to
 * the layer's output error lowers it before any low-rank correction (min/max steps, LSQ's start,
 * the fit), and after the panel's method on top at rank k (the worker's fitStepSizes). Labelled as
 * what it is: layer-local, inspired by SiLQ's learned step sizes, not SiLQ's end-to-end training.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { formatPercent } from '../../src/shared/formatting';
import { METHODS, describeSettings, fittedStepsApply, usesFittedSteps } from '../../src/shared/quantSettings';
import type { LayerAnalysis, StepFitComparison } from '../../src/shared/protocol/layer';
import type { QuantSettings } from '../../src/shared/quantSettings';
import type { UserFacingError } from '../../src/shared/protocol/common';
import { el, headedTable, setText } from '../lib/dom';
import { OBJECTIVE_TEXT, stepFitTable, fitRows, formatChange } from '../lib/stepFitModel';

export const STEP_FIT_OPTION_LABEL = 'Fitted step sizes (layer-local, inspired by SiLQ)';

export class StepFitView {
  readonly element: HTMLElement;
  private readonly hint = el('p', { id: 'step-fit-hint', className: 'note' });
  private readonly summary = el('div', { id: 'step-fit-summary' });
  private readonly compareButton = el('vscode-button', {
    id: 'step-fit-compare',
    text: 'Compare at Rank k',
    attrs: { secondary: '' },
  });
  private readonly status = el('p', {
    id: 'step-fit-status',
    className: 'status',
    attrs: { role: 'status', 'aria-live': 'polite' },
  });
  private readonly table = el('div', { id: 'step-fit-table' });
  private shownKey = '';

  constructor(private readonly onCompare: () => void) {
    this.compareButton.addEventListener('click', () => this.onCompare());
    this.element = el(
      'section',
      { id: 'step-fit', className: 'step-fit', attrs: { 'aria-labelledby': 'step-fit-title' } },
      el('h2', { id: 'step-fit-title', text: STEP_FIT_OPTION_LABEL }),
      el('p', {
        className: 'caption',
        text: 'Each group’s step size Δ fitted to this layer’s output error on the calibration activations — starting from LSQ’s initialisation or the min/max step, whichever is better, then coordinate descent — instead of taken from the group’s min and max. Inspired by SiLQ’s learned step sizes, but layer-local: SiLQ learns them end to end, in quantization-aware training with distillation; nothing here trains the model. Same storage as the INT format.',
      }),
      this.hint,
      this.summary,
      el('div', { className: 'toolbar' }, this.compareButton),
      this.status,
      this.table,
    );
    this.element.hidden = true;
  }

  /** Called with every analysis shown and every settings change. */
  update(settings: QuantSettings, analysis: LayerAnalysis | null): void {
    const applies = fittedStepsApply(settings.weightFormat);
    this.element.hidden = !applies;
    if (!applies) return;
    const fitted = usesFittedSteps(settings);
    this.compareButton.hidden = !fitted;
    if (!fitted) {
      setText(
        this.hint,
        `Tick “${STEP_FIT_OPTION_LABEL}” beside the weight format to fit this layer’s step sizes and see what it wins before and after ${METHODS[settings.method].label}.`,
      );
      this.summary.replaceChildren();
      this.table.replaceChildren();
      setText(this.status, '');
      return;
    }
    const fit = analysis?.stepFit;
    if (!analysis || !fit) {
      setText(this.hint, 'Fitting the step sizes with the analysis…');
      return;
    }
    setText(
      this.hint,
      `Fitted to the ${OBJECTIVE_TEXT[fit.objective]}; ${fit.groupsChanged} of ${fit.groups} groups moved from their start (${fit.start === 'lsq-init' ? 'LSQ' : 'min/max'}), ${fit.sweeps} sweeps; median fitted / min-max step ${fit.medianStepRatio.toFixed(3)}${fit.medianStepRatio < 1 ? ' (the fit clips the range)' : ''}.`,
    );
    const rows = fitRows(analysis);
    this.summary.replaceChildren(
      el('h3', { text: 'Before any low-rank correction (rank 0)' }),
      headedTable(
        'step-fit-rows',
        'Error of the step sizes before any correction',
        [
          { text: 'Step sizes' },
          {
            text: fit.objective === 'weight' ? 'Weight error' : 'Output error',
            num: true,
            title: 'relative, in the fit’s own objective',
          },
          { text: 'vs min/max', num: true },
        ],
        rows.map((r) =>
          el(
            'tr',
            { attrs: { 'data-fit': r.id }, className: r.id === 'fitted' ? 'best' : '' },
            el('td', { text: r.label }),
            el('td', { className: 'num', text: formatPercent(r.relative) }),
            el('td', { className: 'num', text: formatChange(r.change) }),
          ),
        ),
      ),
    );
  }

  computing(rank: number): void {
    setText(this.status, `Comparing fitted and min/max steps at rank ${rank} in the worker…`);
  }

  failed(error: UserFacingError): void {
    setText(this.status, error.code === 'cancelled' ? '' : `Cannot compare the step sizes: ${error.message}`);
  }

  /** The fitted-vs-min/max comparison at a rank, with the method on top. */
  show(settings: QuantSettings, c: StepFitComparison): void {
    this.shownKey = `${describeSettings(settings, false)}|${c.rank}`;
    const t = stepFitTable(c);
    const method = METHODS[c.method].label;
    setText(
      this.status,
      `${t.metric === 'output' ? 'Output' : 'Weight'} error, relative. With ${method} at rank ${t.rank}: the correction on top of each grid.`,
    );
    this.table.replaceChildren(
      headedTable(
        'step-fit-comparison',
        'Fitted against min/max step sizes',
        [
          { text: 'Weight format' },
          { text: 'Alone (rank 0)', num: true },
          { text: '', num: true },
          { text: METHODS[c.method].corrects ? `+ ${method} rank ${t.rank}` : `${method} (no correction)`, num: true },
          { text: '', num: true },
        ],
        t.rows.map((r) =>
          el(
            'tr',
            { attrs: { 'data-grid': r.id }, className: r.id === 'fitted' ? 'best' : '' },
            el('td', { text: r.label }),
            el('td', { className: 'num', text: formatPercent(r.alone.value) }),
            el('td', { className: 'num change', text: formatChange(r.alone.change) }),
            el('td', { className: 'num', text: formatPercent(r.corrected.value) }),
            el('td', { className: 'num change', text: formatChange(r.corrected.change) }),
          ),
        ),
      ),
    );
  }

  /** Whether the table on screen was made at these settings and rank. */
  shows(settings: QuantSettings, rank: number): boolean {
    return this.shownKey === `${describeSettings(settings, false)}|${rank}`;
  }
}
