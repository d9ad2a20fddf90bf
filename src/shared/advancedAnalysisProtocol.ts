/**
 * Params and results of the worker methods beyond one layer at a time: rank allocation under a
 * budget, QLLM channel reassembly, fitted step sizes, and the comparison of two checkpoints. All
 * structured-clone safe (typed arrays and plain objects), so the webviews receive them as they are.
 */
import type { AnalysisSettings } from '../engine/methods/layerAnalysis';
import type { AllocationLayer, AllocationObjective, AllocationResult, Budget } from '../engine/methods/allocation';
import type { CheckpointComparison } from '../engine/methods/comparisonTypes';
import type { LayerSensitivity } from '../engine/methods/sensitivityTypes';
import type { ReassemblyOptions, ReassemblyResult, ReassemblySite } from '../engine/methods/reassemblyTypes';
import type { Recipe } from '../engine/methods/recipe';
import type { StepFitComparison } from '../engine/methods/stepFitComparisonTypes';

export type {
  AllocationLayer,
  AllocationObjective,
  AllocationResult,
  Budget,
  CheckpointComparison,
  LayerSensitivity,
  ReassemblyResult,
  ReassemblySite,
  StepFitComparison,
};

/** Per-layer progress of a whole-checkpoint job. */
export interface LayerProgress {
  done: number;
  total: number;
  layer: string;
}

export interface AllocateRanksParams {
  checkpoint: string;
  calibration?: string;
  /** Layers to allocate; omitted or empty: the layers quantized by default. */
  layers?: string[];
  /** Method, A/B format and tiling, and the largest rank considered. */
  settings: Omit<AnalysisSettings, 'weightFormat' | 'spectra'>;
  /** Candidate weight formats (one: rank allocation only). */
  formats: string[];
  budget: Budget;
  /** Default: with calibration output-sensitivity when `sensitivity` is given, else output-relative; without, weight-relative. */
  objective?: AllocationObjective;
  /** Run the exact DP beside the greedy (default true) with this many budget units (default 4000). */
  exact?: boolean;
  bins?: number;
  /**
   * ONNX models: measure each layer's end-to-end sensitivity on these calibration inputs (needed by
   * the 'output-sensitivity' objective): probe configuration `format` (default the first of
   * `formats`) at `rank` (default 16), on `maxSamples` inputs (default 48).
   */
  sensitivity?: { data: string; tokenizer?: string; maxSamples?: number; rank?: number; format?: string };
}

export interface AllocateRanksResult {
  /**
   * Every layer's per-format cost and error curves: the webview re-runs `allocate` on them (pure,
   * milliseconds) when the budget slider moves, without a new worker call.
   */
  layers: AllocationLayer[];
  result: AllocationResult;
  /** The best allocation as a recipe for `quant-lens export --recipe`. */
  recipe: Recipe;
  /** The measured sensitivities, when asked for. */
  sensitivities: LayerSensitivity[] | null;
}

export interface ReassemblySitesParams {
  checkpoint: string;
}

export interface ReassembleSiteParams {
  checkpoint: string;
  /** Statistics file with N.act_samples for the site's layers. */
  calibration: string;
  /** The consumers sharing the input (from `reassemblySites`), or one layer. */
  layers: string[];
  site?: string;
  options?: Omit<ReassemblyOptions, 'signal'>;
}

export interface FitStepSizesParams {
  checkpoint: string;
  layer: string;
  calibration?: string;
  /** An INT weight format (with or without `:fitted`) and the low-rank method to run on top. */
  settings: Omit<AnalysisSettings, 'maxRank' | 'spectra'>;
  rank: number;
}

export interface CompareCheckpointsParams {
  a: string;
  b: string;
  tolerance?: number;
  spectra?: boolean;
  layers?: string[];
}
