/**
 * Plain-data description of a step-size fit (see stepFitting.ts). Kept apart from the fitting code,
 * which pulls in the linear-algebra kernels, because LayerAnalysis carries it into the webviews.
 * Browser-safe.
 */

/** Which error the steps were fitted to, by what the calibration offered. */
export type StepFitObjective = 'output' | 'output-diagonal' | 'weight';

export interface StepFitSummary {
  objective: StepFitObjective;
  /** J of the min/max (RTN) grid, of the LSQ initialisation, and of the fit (same units). */
  rtn: number;
  lsqInit: number;
  fitted: number;
  start: 'rtn' | 'lsq-init';
  sweeps: number;
  groups: number;
  /** Groups whose step differs from the starting point's. */
  groupsChanged: number;
  /** Median over groups of fitted step / RTN step (below 1: the fit clips the range). */
  medianStepRatio: number;
}
