/** The methods the worker answers. Params and results are structured-clone safe. */
import type { CheckpointSummary } from './checkpointSummary';
import type { AnalysisSettings, LayerAnalysis } from '../engine/methods/analyzeLayer';
import type { StoredLayerAnalysis } from '../engine/store/storedAnalysis';
import type { MethodSpec } from './rpc';
import type { ExportDType, ExportOutcome, ExportRefusal } from '../engine/export/target';
import type { Recipe } from '../engine/methods/recipe';
import type { AllocationLayer, AllocationObjective, AllocationResult, Budget } from '../engine/methods/allocation';
import type { CheckpointComparison } from '../engine/methods/checkpointComparisonTypes';
import type { LayerSensitivity } from '../engine/methods/sensitivityTypes';
import type { ReassemblyOptions, ReassemblyResult, ReassemblySite } from '../engine/methods/reassemblyTypes';
import type { StepFitComparison } from '../engine/methods/stepFitComparisonTypes';

export type { ExportDType, ExportOutcome, Recipe };

export type { AnalysisSettings, LayerAnalysis, StoredLayerAnalysis };

export interface AnalyzeLayerParams {
  checkpoint: string;
  layer: string;
  settings: AnalysisSettings;
  /** Path of a calibration statistics file (safetensors, see src/engine/calibration/statsFile.ts). */
  calibration?: string;
  /**
   * A result-store folder (docs/result-store.md): the analysis is answered from it when it holds
   * this layer at these settings, and written into it when computed. Created when missing.
   */
  store?: string;
  /**
   * Progressive analysis: send earlier, partial results (LayerAnalysis.preview) as progress
   * before the full one: first the curves to max(64, firstRank) and the top of both spectra.
   */
  progressive?: boolean;
  /** The rank the first partial result must cover (the slider's current rank). */
  firstRank?: number;
}

export interface StoredAnalysesParams {
  checkpoint: string;
  calibration?: string;
  settings: AnalysisSettings;
  store: string;
  /** Layer names to look up; omitted: every linear layer. */
  layers?: string[];
  /**
   * Read and hash the weights whose files this machine has not seen with this store (a store
   * computed elsewhere); without it only layers known by file identity are found, reading nothing.
   */
  hashUnknown?: boolean;
}

export interface StoredAnalyses {
  /** The layers the store holds at these settings, in the order asked. */
  found: StoredLayerAnalysis[];
  /** Layers it does not hold (or cannot tell without hashing their weights). */
  missing: string[];
  warnings: string[];
}

export interface AnalysisProgress {
  fraction: number;
  step: string;
  /** An earlier, partial result of a progressive analysis (it has `preview` set). */
  partial?: LayerAnalysis;
}

export interface CalibrationInfoParams {
  path: string;
}

export interface CalibrationInfo {
  path: string;
  /** Weight names with statistics, and which statistics each has. */
  layers: Record<string, string[]>;
  metadata: Record<string, string>;
}

export interface ExportParams {
  checkpoint: string;
  /** Weight names to quantize; empty or omitted: the layers quantized by default. */
  layers?: string[];
  settings: Omit<AnalysisSettings, 'maxRank' | 'spectra'>;
  rank: number;
  recipe?: Recipe;
  calibration?: string;
  /** An EXPORT_TARGETS id; default 'quant-lens'. */
  target?: string;
  /** null: the target's default. */
  dtype: ExportDType | null;
  /** Never an input of the export (checked in the worker); an existing output only with `force`. */
  out: string;
  /** Replace an existing output (the host's save dialog asked the user). */
  force?: boolean;
  shardBytes?: number;
}

/** An export target as the host offers it, with what it cannot express of one export. */
export interface ExportTargetInfo {
  id: string;
  label: string;
  description: string;
  output: 'file' | 'folder';
  extension?: string;
  /** The default output name beside the checkpoint. */
  defaultName: string;
  carriesCorrection: boolean;
  /** Empty: the target can write this export. */
  refusals: ExportRefusal[];
}

export interface ExportProgress {
  done: number;
  total: number;
  layer: string;
}

export interface CalibrateParams {
  model: string;
  /** Image folder (image models) or text file (language models). */
  data: string;
  /** Never an input of the calibration (checked in the worker); an existing file only with `force`. */
  out: string;
  /** Replace an existing `out` (the host's save dialog asked the user). */
  force?: boolean;
  tokenizer?: string;
  seqLen?: number;
  batchSize?: number;
  maxSamples?: number;
  gram?: boolean;
  /** Keep this many activation rows per layer (act_samples, for channel reassembly). */
  sampleRows?: number;
  /** Only layers whose name matches this regular expression. */
  layerPattern?: string;
}

export interface CalibrateResult {
  out: string;
  layers: number;
  samples: number;
  batches: number;
  seconds: number;
}

export interface CalibrateProgress {
  batchesDone: number;
  batches: number;
  samplesDone: number;
}

export type WorkerMethods = {
  /** Parses a checkpoint's headers and lists its tensors and linear layers. */
  openCheckpoint: MethodSpec<{ path: string }, CheckpointSummary>;
  /** Quantizes one layer, decomposes its error and returns spectra and per-rank error curves. */
  analyzeLayer: MethodSpec<AnalyzeLayerParams, StoredLayerAnalysis, AnalysisProgress>;
  /** What a result store holds for a checkpoint at some settings; computes nothing. */
  storedAnalyses: MethodSpec<StoredAnalysesParams, StoredAnalyses, LayerProgress>;
  /** The export targets, each with what it cannot express of this export (nothing is written). */
  exportTargets: MethodSpec<
    Omit<ExportParams, 'target' | 'dtype' | 'out' | 'force' | 'shardBytes'>,
    ExportTargetInfo[]
  >;
  /** Writes the quantized model (or recipe) for one export target. */
  exportCheckpoint: MethodSpec<ExportParams, ExportOutcome, ExportProgress>;
  /** Lists what a calibration statistics file holds. */
  calibrationInfo: MethodSpec<CalibrationInfoParams, CalibrationInfo>;
  /** Runs an ONNX model on calibration inputs and writes the activation statistics file. */
  calibrate: MethodSpec<CalibrateParams, CalibrateResult, CalibrateProgress>;
  /** Rank (and format) per layer under a memory budget, against the uniform rank (allocation.ts). */
  allocateRanks: MethodSpec<AllocateRanksParams, AllocateRanksResult, LayerProgress>;
  /** The QLLM reassembly sites of a checkpoint: layers sharing one input (q/k/v, gate/up) grouped. */
  reassemblySites: MethodSpec<ReassemblySitesParams, ReassemblySite[]>;
  /** QLLM channel reassembly of one site with the θ search, beside L²QER (qllm.ts). */
  reassembleSite: MethodSpec<ReassembleSiteParams, ReassemblyResult>;
  /** Fitted step sizes of one layer (INT formats): RTN vs fitted, alone and with the low-rank method. */
  fitStepSizes: MethodSpec<FitStepSizesParams, StepFitComparison>;
  /** W₂ − W₁ per layer of two checkpoints: relative size, spectrum, changed or not. */
  compareCheckpoints: MethodSpec<CompareCheckpointsParams, CheckpointComparison, LayerProgress>;
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
  /** Fused groups (q/k/v, gate/up, a block's experts) share one format. */
  fused?: boolean;
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
