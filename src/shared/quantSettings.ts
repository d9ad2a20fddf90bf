/**
 * The quantization settings a user picks in the extension (method, weight format and block size,
 * A/B format, rank) and how they become the engine's AnalysisSettings. Shared by the host and the
 * webviews so both agree on defaults, choices and cache keys.
 */
import type { AnalysisSettings, FactorTiling } from '../engine/methods/layerAnalysis';
import type { StatKind } from '../engine/calibration/statKinds';
import {
  METHOD_NAMES,
  METHODS,
  defaultMethod,
  appliedRank,
  isMethodName,
  unavailableReason,
  type MethodName,
} from '../engine/methods/methods';
import {
  FACTOR_FORMAT_CHOICES,
  WEIGHT_FORMAT_CHOICES,
  formatLabel,
  formatToString,
  parseFormat,
  takesBlockSize,
  withTile,
} from '../engine/quantizers';

/** A method as the controls offer it: disabled, with the reason, when calibration is missing. */
export interface MethodChoice {
  name: MethodName;
  label: string;
  description: string;
  /** Why it cannot run here, or null when it can. */
  disabledReason: string | null;
}

export interface QuantSettings {
  method: MethodName;
  /** Weight format family without a block option: 'mxint4', 'int4', 'nvfp4', … */
  weightFormat: string;
  /** Block / group size along the input dimension; -1: one scale per row. */
  blockSize: number;
  /** Format of the low-rank factors A and B, with its own default block. */
  factorFormat: string;
  /** k, the rank of the correction A·B. */
  rank: number;
  /**
   * INT formats only: step sizes fitted to the layer's output error instead of min/max (the
   * `:fitted` format suffix; a layer-local fit inspired by SiLQ). Ignored for the other formats.
   */
  fittedSteps?: boolean;
  /**
   * llama.cpp formats only: ggml's importance-weighted quantizers with the layer's act_rms² as the
   * importance matrix (the `:imatrix` format suffix; needs calibration). Ignored for the others.
   */
  importanceWeights?: boolean;
}

/** 'auto': L²QER when the layer has calibration statistics, LQER otherwise (as the CLI does). */
export type MethodPreference = MethodName | 'auto';

export const BLOCK_SIZE_CHOICES = [8, 16, 32, 64, 128, 256, -1] as const;

/** The rank slider never goes past this, however wide the layer (the paper's ranks stay far below). */
export const MAX_SLIDER_RANK = 512;

/** A/B blocks run along each factor's last dimension, as in the LQER runs (the CLI's default). */
export const FACTOR_TILING: FactorTiling = 'last-dim';

export const DEFAULT_SETTINGS: QuantSettings = {
  method: defaultMethod(false),
  weightFormat: 'mxint4',
  blockSize: 16,
  factorFormat: 'mxint8',
  rank: 32,
};

/** Largest rank the slider offers for a layer of shape [out, in]. */
export function sliderMaxRank(shape: readonly [number, number]): number {
  return Math.max(0, Math.min(MAX_SLIDER_RANK, shape[0], shape[1]));
}

export function blockSizeApplies(weightFormat: string): boolean {
  try {
    return takesBlockSize(parseFormat(weightFormat));
  } catch {
    return false;
  }
}

/** Whether a weight format (family) can have fitted step sizes: the INT formats. */
export function fittedStepsApply(weightFormat: string): boolean {
  try {
    return parseFormat(weightFormat).kind === 'int';
  } catch {
    return false;
  }
}

/** Fitted step sizes in effect: asked for, and the format is an INT one. */
export function usesFittedSteps(s: Pick<QuantSettings, 'weightFormat' | 'fittedSteps'>): boolean {
  return s.fittedSteps === true && fittedStepsApply(s.weightFormat);
}

/** Whether a weight format (family) can be importance-weighted: llama.cpp's types. */
export function importanceWeightsApply(weightFormat: string): boolean {
  try {
    return parseFormat(weightFormat).kind === 'ggml';
  } catch {
    return false;
  }
}

/** Importance weighting in effect: asked for, and the format is a llama.cpp one. */
export function usesImportanceWeights(s: Pick<QuantSettings, 'weightFormat' | 'importanceWeights'>): boolean {
  return s.importanceWeights === true && importanceWeightsApply(s.weightFormat);
}

type FormatChoice = Pick<QuantSettings, 'weightFormat' | 'blockSize' | 'fittedSteps' | 'importanceWeights'>;

/**
 * The engine's format string for the weight, e.g. 'mxint4' (block 16 is MXINT's default),
 * 'int4:g64', 'int4:g128:fitted' with fitted step sizes, 'q4_k:imatrix' with importance weights.
 */
export function weightFormatString(s: FormatChoice): string {
  const parsed = parseFormat(s.weightFormat);
  if (parsed.kind === 'ggml') return formatToString({ ...parsed, imatrix: usesImportanceWeights(s) });
  const f = usesFittedSteps(s) && parsed.kind === 'int' ? { ...parsed, fitted: true } : parsed;
  if (!takesBlockSize(f)) return formatToString(f);
  return formatToString(withTile(f, [1, s.blockSize]));
}

export function factorFormatString(s: Pick<QuantSettings, 'factorFormat'>): string {
  return formatToString(parseFormat(s.factorFormat));
}

/** What the worker is asked to compute for one layer: curves up to the slider's maximum. */
export function toAnalysisSettings(s: QuantSettings, shape: readonly [number, number]): AnalysisSettings {
  return {
    method: s.method,
    weightFormat: weightFormatString(s),
    factorFormat: factorFormatString(s),
    factorTiling: FACTOR_TILING,
    maxRank: appliedRank(s.method, sliderMaxRank(shape)),
  };
}

/** Everything that changes the numbers of an analysis; the rank is not part of it (curves cover all k). */
export function analysisKey(
  checkpoint: string,
  layer: string,
  a: AnalysisSettings,
  calibration: string | null,
): string {
  return JSON.stringify([
    checkpoint,
    layer,
    a.method,
    a.weightFormat,
    a.factorFormat,
    a.factorTiling,
    a.maxRank,
    a.spectra ?? true,
    a.ridge ?? null,
    // Every method uses the calibration when there is one: for its scale, or only for the output error.
    calibration,
  ]);
}

/** Same analysis (the rank aside)? */
export function sameAnalysis(a: QuantSettings, b: QuantSettings): boolean {
  return (
    a.method === b.method &&
    a.weightFormat === b.weightFormat &&
    a.blockSize === b.blockSize &&
    a.factorFormat === b.factorFormat &&
    usesFittedSteps(a) === usesFittedSteps(b) &&
    usesImportanceWeights(a) === usesImportanceWeights(b)
  );
}

export function weightFormatLabel(s: FormatChoice): string {
  try {
    return formatLabel(parseFormat(weightFormatString(s)));
  } catch {
    return s.weightFormat;
  }
}

/** One line for titles and logs: "L²QER · MXINT4 (block 16) · A/B MXINT8 (block 16) · rank 32". */
export function describeSettings(s: QuantSettings, withRank = true): string {
  let ab = s.factorFormat;
  try {
    ab = formatLabel(parseFormat(s.factorFormat));
  } catch {
    // keep the raw string
  }
  const parts = [METHODS[s.method].label, weightFormatLabel(s), `A/B ${ab}`];
  if (withRank && METHODS[s.method].corrects) parts.push(`rank ${s.rank}`);
  return parts.join(' · ');
}

/**
 * The method a preference comes to with these statistics: 'auto' is L²QER with calibration and
 * LQER without, decided again whenever the calibration changes; a method the user picked stays,
 * unless the statistics cannot support it (then the automatic choice, until they can).
 */
export function methodFor(preference: MethodPreference, available: ReadonlySet<StatKind> | null): MethodName {
  if (preference === 'auto') return defaultMethod(available?.has('act_mean_abs') ?? false);
  return usableMethod(preference, available);
}

/** Settings changed with `picked` while `shown` was in use: picking another method pins it. */
export function preferenceAfter(preference: MethodPreference, shown: MethodName, picked: MethodName): MethodPreference {
  return picked === shown ? preference : picked;
}

function validFormat(text: unknown, choices: readonly string[]): string | null {
  if (typeof text !== 'string') return null;
  if (choices.includes(text)) return text;
  try {
    parseFormat(text);
    return text;
  } catch {
    return null;
  }
}

/**
 * Settings from an untrusted source (a webview message, a saved panel state, the user's
 * configuration): every field checked, anything wrong replaced by the fallback's value.
 */
export function sanitizeSettings(value: unknown, fallback: QuantSettings = DEFAULT_SETTINGS): QuantSettings {
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const method = typeof v.method === 'string' && isMethodName(v.method) ? v.method : fallback.method;
  const weightFormat = validFormat(v.weightFormat, WEIGHT_FORMAT_CHOICES) ?? fallback.weightFormat;
  const factorFormat = validFormat(v.factorFormat, FACTOR_FORMAT_CHOICES) ?? fallback.factorFormat;
  const block = v.blockSize;
  const blockSize =
    typeof block === 'number' && Number.isInteger(block) && (block === -1 || block >= 1) ? block : fallback.blockSize;
  const r = v.rank;
  const rank =
    typeof r === 'number' && Number.isFinite(r) && r >= 0 ? Math.min(MAX_SLIDER_RANK, Math.round(r)) : fallback.rank;
  return {
    method,
    weightFormat,
    blockSize,
    factorFormat,
    rank,
    ...(v.fittedSteps === true ? { fittedSteps: true } : {}),
    ...(v.importanceWeights === true ? { importanceWeights: true } : {}),
  };
}

/** Every method, with the reason it cannot run given the statistics at hand (null: none at all). */
export function methodChoices(available: ReadonlySet<StatKind> | null): MethodChoice[] {
  return METHOD_NAMES.map((name) => ({
    name,
    label: METHODS[name].label,
    description: METHODS[name].description,
    disabledReason: unavailableReason(name, available),
  }));
}

/** The method to use when the preferred one cannot run: the automatic choice. */
export function usableMethod(method: MethodName, available: ReadonlySet<StatKind> | null): MethodName {
  if (!unavailableReason(method, available)) return method;
  return defaultMethod(available?.has('act_mean_abs') ?? false);
}

export { METHOD_NAMES, METHODS, type MethodName };
/** The settings UI's format lists come from the format registry. */
export { FACTOR_FORMAT_CHOICES, WEIGHT_FORMAT_CHOICES };
