/**
 * The layer panel (one per checkpoint and layer): its view type, its messages in both directions,
 * its saved state (written by the webview with setState, read back by the host's serializer after
 * a reload, so parsed, never trusted), and the options of its QLLM reassembly section (defaults are
 * QLLM's scripts': W4 per output channel, A4 per token, 20 % extra channels, L²QER reference at
 * rank 32).
 */
import type { LayerAnalysis } from '../../engine/methods/layerAnalysis';
import type { LinearLayer } from '../checkpointSummary';
import { DEFAULT_SETTINGS, MAX_SLIDER_RANK, sanitizeSettings, type QuantSettings } from '../quantSettings';
import type { ReassemblyResult, ReassemblySite } from '../../engine/methods/reassemblyTypes';
import type { StepFitComparison } from '../../engine/methods/stepFitComparisonTypes';
import type { CalibrationLabel, JobProgress, MethodChoice, MethodComparison, UserFacingError } from './common';

export type { LayerAnalysis, ReassemblyResult, ReassemblySite, StepFitComparison };

export const LAYER_VIEW_TYPE = 'quantLens.layer';

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
export type HostToLayer =
  | { type: 'setup'; setup: LayerPanelSetup }
  | { type: 'computing'; settings: QuantSettings; fraction: number; step: string }
  | { type: 'analysis'; settings: QuantSettings; analysis: LayerAnalysis; cached: boolean; timeMs: number }
  | { type: 'analysisFailed'; settings: QuantSettings; error: UserFacingError }
  | { type: 'comparingMethods'; progress: JobProgress }
  | { type: 'methodComparison'; comparison: MethodComparison }
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
export type LayerToHost =
  | { type: 'ready' }
  /** Method, formats or block size changed: the host recomputes (or finds the result cached). */
  | { type: 'setSettings'; settings: QuantSettings }
  /** The slider moved; the host only records it (exports and reports use the panel's rank). */
  | { type: 'rank'; rank: number }
  | { type: 'compareMethods' }
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

export const REASSEMBLY_BITS = [2, 3, 4, 6, 8] as const;

export const DEFAULT_REASSEMBLY_OPTIONS: ReassemblyUiOptions = {
  weightBits: 4,
  actBits: 4,
  channelRatio: 0.2,
  rank: 32,
};

function bits(v: unknown, fallback: number): number {
  return typeof v === 'number' && (REASSEMBLY_BITS as readonly number[]).includes(v) ? v : fallback;
}

export function sanitizeReassemblyOptions(
  value: unknown,
  fallback: ReassemblyUiOptions = DEFAULT_REASSEMBLY_OPTIONS,
): ReassemblyUiOptions {
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const ratio = v.channelRatio;
  const rank = v.rank;
  return {
    weightBits: bits(v.weightBits, fallback.weightBits),
    actBits: bits(v.actBits, fallback.actBits),
    channelRatio:
      typeof ratio === 'number' && Number.isFinite(ratio) && ratio > 0 && ratio <= 1 ? ratio : fallback.channelRatio,
    rank:
      typeof rank === 'number' && Number.isFinite(rank) && rank >= 0
        ? Math.min(MAX_SLIDER_RANK, Math.round(rank))
        : fallback.rank,
  };
}

export const LAYER_PANEL_STATE_VERSION = 1;

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * Parses a saved state. Version 0 (the first preview) kept the settings flat beside the layer:
 * { checkpoint, layer, method, weightFormat, blockSize, factorFormat, rank }.
 * Returns null when the state does not say which checkpoint and layer the panel showed.
 */
export function parseLayerPanelState(
  value: unknown,
  fallback: QuantSettings = DEFAULT_SETTINGS,
): LayerPanelState | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!isNonEmptyString(v.checkpoint) || !isNonEmptyString(v.layer)) return null;
  const version = v.version === undefined ? 0 : v.version;
  if (typeof version !== 'number' || version > LAYER_PANEL_STATE_VERSION) return null;
  const settings = version === 0 ? sanitizeSettings(v, fallback) : sanitizeSettings(v.settings, fallback);
  return {
    version: 1,
    checkpoint: v.checkpoint,
    layer: v.layer,
    settings,
    raw: v.raw === true,
    ...(v.reassembly !== undefined ? { reassembly: sanitizeReassemblyOptions(v.reassembly) } : {}),
  };
}
