/**
 * Messages between the extension host and the webviews. Each panel kind has one inbound and one
 * outbound union; `type` discriminates. Large numeric payloads (spectra, curves, activation
 * scales) travel as typed arrays, which VS Code's postMessage carries as binary buffers.
 *
 * postMessage serialises everything else as JSON: NaN and ±Infinity arrive as null, so scalar
 * fields that can be non-finite are typed `number | null` here.
 */
import type { CheckpointSummary, LinearLayer } from './checkpointSummary';
import type { LayerAnalysis } from '../engine/methods/layerAnalysis';
import type { MethodName } from '../engine/methods/methods';
import type { QuantSettings } from './quantSettings';
import type {
  AllocationLayer,
  AllocationObjective,
  Budget,
  CheckpointComparison,
  LayerSensitivity,
  ReassemblyResult,
  ReassemblySite,
  StepFitComparison,
} from './advancedAnalysisProtocol';

export type { LayerAnalysis, QuantSettings };
export type {
  AllocationLayer,
  AllocationObjective,
  Budget,
  CheckpointComparison,
  LayerSensitivity,
  ReassemblyResult,
  ReassemblySite,
  StepFitComparison,
};

export interface UserFacingError {
  message: string;
  /** The file the problem is in, when there is one. */
  file?: string;
  /** QuantLensError code ('malformed', 'unsupported', …) or 'internal'. */
  code: string;
}

/** A method as the controls offer it: disabled, with the reason, when calibration is missing. */
export interface MethodChoice {
  name: MethodName;
  label: string;
  description: string;
  /** Why it cannot run here, or null when it can. */
  disabledReason: string | null;
}

/** The calibration source in use, as the panels show it. */
export interface CalibrationLabel {
  path: string;
  /** File name and what it holds, e.g. "stats.safetensors · 154 layers · mean |x|, RMS". */
  summary: string;
}

/** One analysed layer at the checkpoint's current settings, for the overview table and heatmap. */
export interface LayerResultRow {
  name: string;
  /** ‖W − W_q‖/‖W‖: the error before any correction. */
  weightErrorRtn: number | null;
  weightError: number | null;
  outputError: number | null;
  /** The output error is only estimated from per-channel RMS (no Gram matrix). */
  outputErrorEstimated: boolean;
  weightSqnrDb: number | null;
  recovered: number | null;
  bitsPerWeight: number;
  bytes: number;
  nonFinite: number;
}

export interface LayerFailureRow {
  name: string;
  error: UserFacingError;
}

/** Totals over the whole model at the current settings (bit accounting needs no analysis). */
export interface ModelTotals {
  quantizedLayers: number;
  quantizedParameters: number;
  /** Average bits per quantized weight, A and B included. */
  bitsPerWeight: number;
  /** Bytes of the quantized layers (W_q, A, B and their scales). */
  quantizedBytes: number;
  /** Bytes of the whole quantized model: quantized layers plus every other tensor as stored. */
  modelBytes: number;
  /** Bytes of the checkpoint's tensors as stored. */
  originalBytes: number;
  /** A·B bytes relative to the quantized weights' bytes. */
  factorOverhead: number;
  analysedLayers: number;
  meanWeightError: number | null;
  meanOutputError: number | null;
}

/** Several methods at the same formats and rank: the same bit budget. */
export interface MethodComparison {
  /** What was compared: one layer's name, or a count of layers. */
  scope: string;
  settings: QuantSettings;
  /** Bits per weight of the corrected methods (W_q, A and B at the rank). */
  bitsPerWeight: number;
  rows: MethodComparisonRow[];
}

export interface MethodComparisonRow {
  method: MethodName;
  label: string;
  /** Why it was not run, when it was not. */
  skipped: string | null;
  weightError: number | null;
  outputError: number | null;
  weightSqnrDb: number | null;
  recovered: number | null;
  /** W_q plus A and B, per weight: the same for every corrected method; RTN has no A·B. */
  bitsPerWeight: number | null;
  /** Layers that failed (checkpoint-wide comparisons). */
  failures: number;
}

/** A long job's progress as the panels show it (the notification shows the same). */
export interface JobProgress {
  kind: 'analysis' | 'comparison' | 'export' | 'allocation' | 'checkpoint-comparison';
  running: boolean;
  done: number;
  total: number;
  current: string | null;
  etaMs: number | null;
}

export type OverviewCommand =
  'analyzeAll' | 'cancel' | 'compareMethods' | 'exportCheckpoint' | 'exportReport' | 'setCalibration';

/** Host → checkpoint overview. */
export type OverviewInbound =
  | { type: 'loading'; path: string }
  | { type: 'checkpoint'; summary: CheckpointSummary }
  | {
      type: 'settings';
      settings: QuantSettings;
      methods: MethodChoice[];
      calibration: CalibrationLabel | null;
    }
  | {
      type: 'results';
      rank: number;
      rows: LayerResultRow[];
      failures: LayerFailureRow[];
      totals: ModelTotals;
    }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'comparison'; comparison: MethodComparison }
  | { type: 'allocationSupport'; support: AllocationSupport }
  | { type: 'allocationProgress'; progress: JobProgress }
  | { type: 'allocation'; allocation: AllocationCurves; view: AllocationView | null }
  | { type: 'allocationFailed'; request: AllocationRequest; error: UserFacingError }
  | { type: 'error'; error: UserFacingError };

/** Checkpoint overview → host. */
export type OverviewOutbound =
  | { type: 'ready' }
  | { type: 'openLayer'; name: string }
  | { type: 'setSettings'; settings: QuantSettings }
  | { type: 'command'; command: OverviewCommand }
  /** Computes every layer's (format, rank) curves for the allocation (a worker job). */
  | { type: 'computeAllocation'; request: AllocationRequest; view: AllocationView | null }
  /** The budget or objective moved; the host keeps it (exports use it, a re-shown overview gets it back). */
  | { type: 'allocationView'; view: AllocationView }
  | { type: 'exportRecipe'; view: AllocationView }
  | { type: 'exportWithRecipe'; view: AllocationView };

/** What the rank allocation is computed over (besides the checkpoint's method and A/B format). */
export interface AllocationRequest {
  /** Candidate weight formats, engine strings ('mxint4', 'int4:g128'); one: rank allocation only. */
  formats: string[];
  /** Largest rank considered per layer. */
  maxRank: number;
  /** Weight each layer by its measured end-to-end sensitivity (ONNX models with calibration inputs). */
  sensitivity: boolean;
}

/** The budget and objective the allocation is shown at (the webview re-runs the allocation on them). */
export interface AllocationView {
  budget: Budget;
  /** How the budget was entered, for the controls. */
  unit: 'bits' | 'mib';
  objective: AllocationObjective;
}

/** What the allocation can do for this checkpoint, for the section's controls and notes. */
export interface AllocationSupport {
  /** Calibration statistics cover the layers: the output-error objectives are available. */
  calibrated: boolean;
  /** The sensitivity-weighted objective can be measured here (null), or why not. */
  sensitivityUnavailable: string | null;
  /** The checkpoint can be evaluated end to end (ONNX), with `quant-lens allocate --eval-data`. */
  evaluable: boolean;
  /** The checkpoint's current settings: method, A/B format, weight format and block. */
  settings: QuantSettings;
  /** The candidate formats offered: every weight format at the current block size (engine strings). */
  formatChoices: { value: string; label: string }[];
  /** Paths for the CLI hints. */
  checkpoint: string;
  calibration: string | null;
}

/** Every layer's curves for one allocation request, from the worker. */
export interface AllocationCurves {
  request: AllocationRequest;
  /** Method and A/B format the curves were computed with. */
  settings: QuantSettings;
  calibration: string | null;
  layers: AllocationLayer[];
  sensitivities: LayerSensitivity[] | null;
  timeMs: number;
}

/** What a layer panel needs before its first analysis arrives. */
export interface LayerPanelSetup {
  checkpoint: string;
  checkpointName: string;
  layer: LinearLayer;
  settings: QuantSettings;
  methods: MethodChoice[];
  calibration: CalibrationLabel | null;
  /** The slider's maximum: min(512, out, in). */
  maxRank: number;
}

/** What the checkpoint overview stores with setState: the allocation's controls survive a reload. */
export interface OverviewState {
  version: 1;
  allocation?: { request: AllocationRequest; view: AllocationView | null };
}

/** Host → layer panel. */
export type LayerInbound =
  | { type: 'setup'; setup: LayerPanelSetup }
  | { type: 'computing'; settings: QuantSettings; fraction: number; step: string }
  | { type: 'analysis'; settings: QuantSettings; analysis: LayerAnalysis; cached: boolean; timeMs: number }
  | { type: 'analysisFailed'; settings: QuantSettings; error: UserFacingError }
  | { type: 'comparing'; progress: JobProgress }
  | { type: 'comparison'; comparison: MethodComparison }
  | { type: 'methods'; methods: MethodChoice[]; calibration: CalibrationLabel | null }
  | { type: 'reassemblySupport'; support: ReassemblySupport }
  | { type: 'reassembling'; options: ReassemblyUiOptions; elapsedMs: number }
  | { type: 'reassembly'; options: ReassemblyUiOptions; result: ReassemblyResult; timeMs: number; cached: boolean }
  | { type: 'reassemblyFailed'; options: ReassemblyUiOptions; error: UserFacingError }
  | { type: 'stepFitComputing'; settings: QuantSettings; rank: number }
  | { type: 'stepFit'; settings: QuantSettings; rank: number; comparison: StepFitComparison }
  | { type: 'stepFitFailed'; settings: QuantSettings; rank: number; error: UserFacingError }
  | { type: 'error'; error: UserFacingError };

/** The QLLM channel reassembly of a layer's input site, as the layer panel can run it. */
export interface ReassemblySupport {
  /** The site this layer reads its input from (with the layers sharing it), or null. */
  site: ReassemblySite | null;
  /** 'ready': the calibration has activation samples for the site. */
  status: 'ready' | 'no-calibration' | 'no-samples' | 'no-site';
  /** What the section says when it cannot run, and how to get there. */
  message: string;
}

/** Options of a reassembly run (QLLM's defaults: W4 per channel, A4 per token, ratio 0.2). */
export interface ReassemblyUiOptions {
  weightBits: number;
  actBits: number;
  channelRatio: number;
  /** Rank of the L²QER reference. */
  rank: number;
}

/** Layer panel → host. */
export type LayerOutbound =
  | { type: 'ready' }
  /** Method, formats or block size changed: the host recomputes (or finds the result cached). */
  | { type: 'setSettings'; settings: QuantSettings }
  /** The slider moved; the host only records it (exports and reports use the panel's rank). */
  | { type: 'rank'; rank: number }
  | { type: 'compare' }
  | { type: 'cancel' }
  | { type: 'openOverview' }
  | { type: 'reassemble'; options: ReassemblyUiOptions }
  | { type: 'cancelReassembly' }
  /** Fitted vs min/max steps at this rank, alone and with the panel's method on top. */
  | { type: 'compareStepFit'; settings: QuantSettings; rank: number };

/** What a layer panel stores with setState, and what the serializer gets back after a reload. */
export interface LayerPanelState {
  version: 1;
  checkpoint: string;
  layer: string;
  settings: QuantSettings;
  /** Spectra drawn as raw singular values instead of normalised. */
  raw: boolean;
  /** The reassembly section's options, once changed. */
  reassembly?: ReassemblyUiOptions;
}

/** Host → checkpoint comparison panel. */
export type ComparisonInbound =
  | { type: 'setup'; a: string; b: string; view: ComparisonView }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'comparison'; comparison: CheckpointComparison; timeMs: number }
  | { type: 'error'; error: UserFacingError };

/** Checkpoint comparison panel → host. */
export type ComparisonOutbound =
  { type: 'ready' } | { type: 'cancel' } | { type: 'recompute' } | { type: 'openOverview'; which: 'a' | 'b' };

/** The comparison view's own choices. */
export interface ComparisonView {
  tolerance: number;
  sort: { column: ComparisonColumn; descending: boolean };
  selected: string | null;
  changedOnly: boolean;
}

export type ComparisonColumn =
  'name' | 'shape' | 'relative' | 'maxAbs' | 'sigma1' | 'rank90' | 'stableRank' | 'verdict';

/** What the comparison panel stores with setState, and what the serializer gets back after a reload. */
export interface ComparisonPanelState {
  version: 1;
  a: string;
  b: string;
  view: ComparisonView;
}
