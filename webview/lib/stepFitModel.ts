/**
 * The numbers of the layer panel's fitted step sizes section: the fit's own objective for min/max
 * steps, the LSQ initialisation and the fitted steps (from LayerAnalysis.stepFit), and the
 * comparison with the low-rank method on top (from the worker's fitStepSizes). Pure; unit-tested.
 */
import type { LayerAnalysis, StepFitComparison } from '../../src/shared/protocol/layer';
import type { StepFitObjective } from '../../src/engine/methods/stepFitTypes';

export const OBJECTIVE_TEXT: Record<StepFitObjective, string> = {
  output: 'output error tr(ΔW R ΔWᵀ), R the activations’ Gram matrix',
  'output-diagonal': 'output error estimated from per-channel RMS (no Gram matrix in the calibration)',
  weight: 'weight error ‖ΔW‖² (no calibration)',
};

export interface FitRow {
  id: 'minmax' | 'lsq' | 'fitted';
  label: string;
  /** √(J / reference): the relative error in the fit's own objective; null when no reference. */
  relative: number | null;
  /** Relative to min/max: −0.12 is 12 % lower. */
  change: number | null;
}

/** The reference J is relative to: ‖W‖² for the weight objective, tr(W R Wᵀ) for the output ones. */
function reference(a: LayerAnalysis): number | null {
  const fit = a.stepFit;
  if (!fit) return null;
  return fit.objective === 'weight' ? a.norms.weightSq : a.norms.outputSq;
}

/** Before any low-rank correction: min/max steps, the LSQ start, and the fit. */
export function fitRows(a: LayerAnalysis): FitRow[] {
  const fit = a.stepFit;
  if (!fit) return [];
  const ref = reference(a);
  const rel = (j: number) => (ref && ref > 0 && j >= 0 ? Math.sqrt(j / ref) : null);
  const change = (j: number) => (fit.rtn > 0 ? Math.sqrt(j / fit.rtn) - 1 : null);
  return [
    { id: 'minmax', label: 'min/max steps (round to nearest)', relative: rel(fit.rtn), change: null },
    { id: 'lsq', label: 'LSQ initialisation 2·mean|w|/√Q_P', relative: rel(fit.lsqInit), change: change(fit.lsqInit) },
    { id: 'fitted', label: 'fitted steps', relative: rel(fit.fitted), change: change(fit.fitted) },
  ];
}

export interface StepFitCell {
  value: number | null;
  /** Relative to the min/max steps in the same column. */
  change: number | null;
}

export interface StepFitTable {
  /** Which error the table shows: the output error when calibration gives one. */
  metric: 'output' | 'weight';
  rank: number;
  rows: { id: 'minmax' | 'fitted'; label: string; alone: StepFitCell; corrected: StepFitCell }[];
}

/** Min/max against fitted steps, alone (rank 0) and with the method at rank k. */
export function stepFitTable(c: StepFitComparison): StepFitTable {
  const metric = c.rtn.alone.outputError !== null ? 'output' : 'weight';
  const pick = (p: { weightError: number; outputError: number | null }) =>
    metric === 'output' ? p.outputError : p.weightError;
  const cell = (v: number | null, base: number | null): StepFitCell => ({
    value: v,
    change: v !== null && base !== null && base > 0 ? v / base - 1 : null,
  });
  const baseAlone = pick(c.rtn.alone);
  const baseCorrected = pick(c.rtn.withCorrection);
  return {
    metric,
    rank: c.rank,
    rows: [
      {
        id: 'minmax',
        label: `${c.format} (min/max steps)`,
        alone: cell(baseAlone, null),
        corrected: cell(baseCorrected, null),
      },
      {
        id: 'fitted',
        label: `${c.fittedFormat} (fitted steps)`,
        alone: cell(pick(c.fitted.alone), baseAlone),
        corrected: cell(pick(c.fitted.withCorrection), baseCorrected),
      },
    ],
  };
}

/** "−12.3 %" / "+0.4 %" / "". */
export function formatChange(change: number | null): string {
  if (change === null || !Number.isFinite(change)) return '';
  const pct = (100 * change).toFixed(1);
  return change > 0 ? `+${pct} %` : `${pct.replace('-', '−')} %`;
}
