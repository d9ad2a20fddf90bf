/** The methods the worker answers. Params and results are structured-clone safe. */
import type { CheckpointSummary } from './checkpointSummary';
import type { AnalysisSettings, LayerAnalysis } from '../engine/methods/analyzeLayer';
import type { MethodSpec } from './rpc';

export type { AnalysisSettings, LayerAnalysis };

export interface AnalyzeLayerParams {
  checkpoint: string;
  layer: string;
  settings: AnalysisSettings;
  /** Path of a calibration statistics file (safetensors, see src/engine/calibration/statsFile.ts). */
  calibration?: string;
}

export interface AnalysisProgress {
  fraction: number;
  step: string;
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

export type WorkerMethods = {
  /** Parses a checkpoint's headers and lists its tensors and linear layers. */
  openCheckpoint: MethodSpec<{ path: string }, CheckpointSummary>;
  /** Quantizes one layer, decomposes its error and returns spectra and per-rank error curves. */
  analyzeLayer: MethodSpec<AnalyzeLayerParams, LayerAnalysis, AnalysisProgress>;
  /** Lists what a calibration statistics file holds. */
  calibrationInfo: MethodSpec<CalibrationInfoParams, CalibrationInfo>;
  /** Test hook: runs for `ms` milliseconds in steps, reporting progress, honouring cancellation. */
  sleep: MethodSpec<{ ms: number }, { slept: number }, { fraction: number }>;
};

export type WorkerMethodName = keyof WorkerMethods;
