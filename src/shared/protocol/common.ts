/**
 * What every panel's messages share: errors as users see them, method choices, the calibration
 * label, a long job's progress and the method comparison (overview and layer panel both show it).
 *
 * postMessage serialises everything as JSON except typed arrays, which travel as binary buffers:
 * NaN and ±Infinity arrive as null, so scalar fields that can be non-finite are typed
 * `number | null`.
 */
import type { MethodName } from '../../engine/methods/methods';
import type { MethodChoice, QuantSettings } from '../quantSettings';

export type { MethodChoice };

export interface UserFacingError {
  message: string;
  /** The file the problem is in, when there is one. */
  file?: string;
  /** QuantLensError code ('malformed', 'unsupported', …) or 'internal'. */
  code: string;
}

/** The calibration source in use, as the panels show it. */
export interface CalibrationLabel {
  path: string;
  /** File name and what it holds, e.g. "stats.safetensors · 154 layers · mean |x|, RMS". */
  summary: string;
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
  kind: 'analysis' | 'method-comparison' | 'export' | 'allocation' | 'checkpoint-comparison';
  running: boolean;
  done: number;
  total: number;
  current: string | null;
  etaMs: number | null;
}
