/** Plain-data result of the fitted-step comparison (stepFitComparison.ts), importable by webviews. */
import type { AnalysisSettings } from './layerAnalysis';
import type { StepFitObjective, StepFitSummary } from './stepFitTypes';

export interface StepFitPoint {
  /** Relative errors ‖ΔW‖/‖W‖ and √(tr(ΔW R ΔWᵀ)/tr(W R Wᵀ)) (null without calibration). */
  weightError: number;
  outputError: number | null;
}

export interface StepFitComparison {
  layer: string;
  /** The INT format without and with `:fitted`. */
  format: string;
  fittedFormat: string;
  method: AnalysisSettings['method'];
  rank: number;
  objective: StepFitObjective;
  summary: StepFitSummary;
  rtn: { alone: StepFitPoint; withCorrection: StepFitPoint };
  fitted: { alone: StepFitPoint; withCorrection: StepFitPoint };
  /** The LSQ initialisation's relative error in the fit's own objective (rank 0). */
  lsqInitRelative: number | null;
  label: string;
}

export const STEP_FIT_LABEL = 'layer-local step-size fit (inspired by SiLQ; not end-to-end QAT)';
