/**
 * The checkpoint overview (a custom editor): its view types, its messages in both directions, its
 * saved state and the checks that messages and saved state from a webview or from disk go through.
 */
import { ALLOCATION_OBJECTIVES } from '../../engine/methods/allocation';
import { formatToString, parseFormat } from '../../engine/quantizers';
import type { CheckpointSummary } from '../checkpointSummary';
import { MAX_SLIDER_RANK, type QuantSettings } from '../quantSettings';
import type { AllocationLayer, AllocationObjective, AllocationResult, Budget } from '../../engine/methods/allocation';
import type { LayerSensitivity } from '../../engine/methods/sensitivityTypes';
import type { CalibrationLabel, JobProgress, MethodChoice, MethodComparison, UserFacingError } from './common';

export type { AllocationLayer, AllocationObjective, AllocationResult, Budget, LayerSensitivity };

/** The overview is the default editor of some checkpoint files and offered under "Open With…" for the rest. */
export const OVERVIEW_VIEW_TYPE = 'quantLens.overview';
export const OVERVIEW_OPTIONAL_VIEW_TYPE = 'quantLens.overviewOptional';

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

export type OverviewCommand =
  'analyzeAll' | 'cancel' | 'compareMethods' | 'exportCheckpoint' | 'exportReport' | 'setCalibration';

/** Host → checkpoint overview. */
export type HostToOverview =
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
  | { type: 'methodComparison'; comparison: MethodComparison }
  | { type: 'allocationSupport'; support: AllocationSupport }
  | { type: 'allocationProgress'; progress: JobProgress }
  | { type: 'allocation'; allocation: AllocationCurves; view: AllocationGoal | null }
  | { type: 'allocationFailed'; request: AllocationRequest; error: UserFacingError }
  | { type: 'error'; error: UserFacingError };

/** Checkpoint overview → host. */
export type OverviewToHost =
  | { type: 'ready' }
  | { type: 'openLayer'; name: string }
  | { type: 'setSettings'; settings: QuantSettings }
  | { type: 'command'; command: OverviewCommand }
  /** Computes every layer's (format, rank) curves for the allocation (a worker job). */
  | { type: 'computeAllocation'; request: AllocationRequest; view: AllocationGoal | null }
  /** The budget or objective moved; the host keeps it (exports use it, a re-shown overview gets it back). */
  | { type: 'allocationView'; view: AllocationGoal }
  | { type: 'exportRecipe'; view: AllocationGoal }
  | { type: 'exportWithRecipe'; view: AllocationGoal };

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
export interface AllocationGoal {
  budget: Budget;
  /** How the budget was entered, for the controls. */
  unit: 'bits' | 'mib';
  objective: AllocationObjective;
  /** Fused groups (q/k/v, gate/up, a MoE block's experts) get one format, as vLLM and TensorRT-LLM need. */
  fused?: boolean;
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

/** What the checkpoint overview stores with setState: the allocation's controls survive a reload. */
export interface OverviewState {
  version: 1;
  allocation?: { request: AllocationRequest; view: AllocationGoal | null };
}

/** At most this many candidate formats: each one is a full analysis of every layer. */
export const MAX_ALLOCATION_FORMATS = 6;

function canonicalFormat(v: unknown): string | null {
  if (typeof v !== 'string' || v.trim() === '') return null;
  try {
    return formatToString(parseFormat(v.trim()));
  } catch {
    return null;
  }
}

/** A request from a webview or a saved state: every field checked; null when no format is usable. */
export function sanitizeAllocationRequest(value: unknown): AllocationRequest | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const formats = Array.isArray(v.formats) ? v.formats.map(canonicalFormat).filter((f): f is string => !!f) : [];
  const unique = [...new Set(formats)].slice(0, MAX_ALLOCATION_FORMATS);
  if (unique.length === 0) return null;
  const r = v.maxRank;
  const maxRank = typeof r === 'number' && Number.isFinite(r) && r >= 0 ? Math.min(MAX_SLIDER_RANK, Math.round(r)) : 64;
  return { formats: unique, maxRank, sensitivity: v.sensitivity === true };
}

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** A budget and objective from a webview or a saved state; null when the budget is not usable. */
export function sanitizeAllocationGoal(value: unknown): AllocationGoal | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const b = typeof v.budget === 'object' && v.budget !== null ? (v.budget as Record<string, unknown>) : {};
  let budget: Budget;
  if (positive(b.bitsPerWeight)) budget = { bitsPerWeight: b.bitsPerWeight };
  else if (positive(b.bytes)) budget = { bytes: b.bytes };
  else return null;
  const objective = (ALLOCATION_OBJECTIVES as readonly unknown[]).includes(v.objective)
    ? (v.objective as AllocationObjective)
    : 'weight-relative';
  const unit = v.unit === 'mib' ? 'mib' : 'bits';
  return { budget, unit, objective, ...(v.fused === true ? { fused: true } : {}) };
}

/** The overview's saved state (from disk, from older versions): parsed, never trusted. */
export function parseOverviewState(value: unknown): OverviewState {
  if (typeof value !== 'object' || value === null) return { version: 1 };
  const a = (value as Record<string, unknown>).allocation;
  if (typeof a !== 'object' || a === null) return { version: 1 };
  const request = sanitizeAllocationRequest((a as Record<string, unknown>).request);
  if (!request) return { version: 1 };
  return { version: 1, allocation: { request, view: sanitizeAllocationGoal((a as Record<string, unknown>).view) } };
}
