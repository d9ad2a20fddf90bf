/**
 * The rank allocation as the checkpoint overview shows it: what the user asks for (candidate
 * formats, largest rank, budget, objective), checked when it comes from a webview or a saved
 * state, and the allocation at a budget from the curves the worker computed. Pure (allocation.ts
 * is): the host and the webview share it, so the recipe the host exports is the allocation the
 * webview shows.
 */
import {
  ALLOCATION_OBJECTIVES,
  allocate,
  allocationRecipe,
  type AllocationLayer,
  type AllocationObjective,
  type AllocationResult,
  type Budget,
} from '../engine/methods/allocation';
import type { Recipe } from '../engine/methods/recipe';
import { formatLabel, formatToString, parseFormat } from '../engine/quantizers';
import { MAX_SLIDER_RANK } from './quantSettings';
import type { AllocationCurves, AllocationRequest, AllocationView, OverviewState } from './webviewProtocol';

export { ALLOCATION_OBJECTIVES, type AllocationObjective, type Budget };

/** At most this many candidate formats: each one is a full analysis of every layer. */
export const MAX_ALLOCATION_FORMATS = 6;

export const MIB = 2 ** 20;

export const OBJECTIVE_LABELS: Record<AllocationObjective, string> = {
  'output-relative': 'Σ relative output error² (each layer’s output noise-to-signal)',
  'output-absolute': 'Σ output error² (absolute)',
  'output-sensitivity': 'Σ relative output error² × measured end-to-end sensitivity',
  'weight-relative': 'Σ relative weight error² ‖ΔW‖²/‖W‖²',
  'weight-absolute': 'Σ weight error² ‖ΔW‖² (absolute)',
};

/** The largest rank considered by default: twice the checkpoint's rank, at least 64. */
export function defaultMaxRank(rank: number): number {
  return Math.min(MAX_SLIDER_RANK, Math.max(64, 2 * rank));
}

function canonicalFormat(v: unknown): string | null {
  if (typeof v !== 'string' || v.trim() === '') return null;
  try {
    return formatToString(parseFormat(v.trim()));
  } catch {
    return null;
  }
}

/** A readable label of an engine format string ('mxint4' → 'MXINT4 (block 16)'). */
export function allocationFormatLabel(format: string): string {
  try {
    return formatLabel(parseFormat(format));
  } catch {
    return format;
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
export function sanitizeAllocationView(value: unknown): AllocationView | null {
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
  return { budget, unit, objective };
}

/** The objectives the curves support: output ones need calibration everywhere, sensitivity a measurement. */
export function availableObjectives(layers: readonly AllocationLayer[]): AllocationObjective[] {
  const output = layers.length > 0 && layers.every((l) => l.outputSq !== null && l.options.every((o) => o.outputErrSq));
  const sensitivity = output && layers.every((l) => typeof l.sensitivity === 'number' && l.sensitivity >= 0);
  return ALLOCATION_OBJECTIVES.filter((o) =>
    o === 'output-sensitivity' ? sensitivity : o.startsWith('output') ? output : true,
  );
}

/** The objective a fresh allocation starts with: the most informed one available. */
export function defaultObjective(available: readonly AllocationObjective[]): AllocationObjective {
  for (const o of ['output-sensitivity', 'output-relative', 'weight-relative'] as const)
    if (available.includes(o)) return o;
  return available[0] ?? 'weight-relative';
}

/** The view with an objective the curves support (a stale or hand-edited one falls back). */
export function usableView(view: AllocationView, layers: readonly AllocationLayer[]): AllocationView {
  const available = availableObjectives(layers);
  return available.includes(view.objective) ? view : { ...view, objective: defaultObjective(available) };
}

/** The allocation at the view's budget (throws the engine's error when the budget is below the minimum). */
export function allocationAt(
  layers: AllocationLayer[],
  view: AllocationView,
  options: { exact?: boolean; bins?: number } = {},
): AllocationResult {
  return allocate(layers, view.budget, {
    objective: view.objective,
    exact: options.exact ?? true,
    ...(options.bins ? { bins: options.bins } : {}),
  });
}

/** The recipe of the allocation shown at `view`: what "Export recipe…" writes. */
export function recipeFor(
  curves: AllocationCurves,
  view: AllocationView,
): { recipe: Recipe; result: AllocationResult } {
  const v = usableView(view, curves.layers);
  const result = allocationAt(curves.layers, v);
  const recipe = allocationRecipe(result.best, {
    method: curves.settings.method,
    factorFormat: curves.settings.factorFormat,
    objective: v.objective,
    budget: v.budget,
  });
  return { recipe, result };
}

/**
 * The view a fresh allocation starts at: the budget of the checkpoint's uniform configuration (the
 * first candidate format at the current rank), so allocated and uniform start at the same bits.
 */
export function defaultView(curves: AllocationCurves, rank: number): AllocationView {
  const available = availableObjectives(curves.layers);
  const objective = defaultObjective(available);
  const format = curves.request.formats[0]!;
  let bits = 0;
  let weights = 0;
  for (const l of curves.layers) {
    const o = l.options.find((x) => x.format === format) ?? l.options[0]!;
    bits += o.bits[Math.min(rank, o.bits.length - 1)]!;
    weights += l.shape[0] * l.shape[1];
  }
  // Rounded up to 4 decimals, so that the uniform configuration still fits.
  const bitsPerWeight = weights > 0 ? Math.ceil((bits / weights) * 1e4) / 1e4 : 4;
  return { budget: { bitsPerWeight }, unit: 'bits', objective };
}

/** The overview's saved state (from disk, from older versions): parsed, never trusted. */
export function parseOverviewState(value: unknown): OverviewState {
  if (typeof value !== 'object' || value === null) return { version: 1 };
  const a = (value as Record<string, unknown>).allocation;
  if (typeof a !== 'object' || a === null) return { version: 1 };
  const request = sanitizeAllocationRequest((a as Record<string, unknown>).request);
  if (!request) return { version: 1 };
  return { version: 1, allocation: { request, view: sanitizeAllocationView((a as Record<string, unknown>).view) } };
}
