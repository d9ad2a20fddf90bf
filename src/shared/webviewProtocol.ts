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

export type { LayerAnalysis, QuantSettings };

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
  kind: 'analysis' | 'comparison' | 'export';
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
  | { type: 'error'; error: UserFacingError };

/** Checkpoint overview → host. */
export type OverviewOutbound =
  | { type: 'ready' }
  | { type: 'openLayer'; name: string }
  | { type: 'setSettings'; settings: QuantSettings }
  | { type: 'command'; command: OverviewCommand };

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

/** Host → layer panel. */
export type LayerInbound =
  | { type: 'setup'; setup: LayerPanelSetup }
  | { type: 'computing'; settings: QuantSettings; fraction: number; step: string }
  | { type: 'analysis'; settings: QuantSettings; analysis: LayerAnalysis; cached: boolean; timeMs: number }
  | { type: 'analysisFailed'; settings: QuantSettings; error: UserFacingError }
  | { type: 'comparing'; progress: JobProgress }
  | { type: 'comparison'; comparison: MethodComparison }
  | { type: 'methods'; methods: MethodChoice[]; calibration: CalibrationLabel | null }
  | { type: 'error'; error: UserFacingError };

/** Layer panel → host. */
export type LayerOutbound =
  | { type: 'ready' }
  /** Method, formats or block size changed: the host recomputes (or finds the result cached). */
  | { type: 'setSettings'; settings: QuantSettings }
  /** The slider moved; the host only records it (exports and reports use the panel's rank). */
  | { type: 'rank'; rank: number }
  | { type: 'compare' }
  | { type: 'cancel' }
  | { type: 'openOverview' };

/** What a layer panel stores with setState, and what the serializer gets back after a reload. */
export interface LayerPanelState {
  version: 1;
  checkpoint: string;
  layer: string;
  settings: QuantSettings;
  /** Spectra drawn as raw singular values instead of normalised. */
  raw: boolean;
}
