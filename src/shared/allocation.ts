/**
 * The rank allocation as the checkpoint overview shows it: objectives, default goals, and the
 * allocation at a goal's budget from the curves the worker computed. Pure (the engine's
 * allocation.ts is): the host and the webview share it, so the recipe the host exports is the
 * allocation the webview shows. The request and goal checks are in protocol/overview.ts.
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
import { formatLabel, parseFormat } from '../engine/quantizers';
import { MAX_SLIDER_RANK } from './quantSettings';
import type { AllocationCurves, AllocationGoal } from './protocol/overview';

export { ALLOCATION_OBJECTIVES, type AllocationObjective, type Budget };

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

/** A readable label of an engine format string ('mxint4' → 'MXINT4 (block 16)'). */
export function allocationFormatLabel(format: string): string {
  try {
    return formatLabel(parseFormat(format));
  } catch {
    return format;
  }
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
export function usableGoal(view: AllocationGoal, layers: readonly AllocationLayer[]): AllocationGoal {
  const available = availableObjectives(layers);
  return available.includes(view.objective) ? view : { ...view, objective: defaultObjective(available) };
}

/** The allocation at the view's budget (throws the engine's error when the budget is below the minimum). */
export function allocationAt(
  layers: AllocationLayer[],
  view: AllocationGoal,
  options: { exact?: boolean; bins?: number } = {},
): AllocationResult {
  return allocate(layers, view.budget, {
    objective: view.objective,
    fused: !!view.fused,
    exact: options.exact ?? true,
    ...(options.bins ? { bins: options.bins } : {}),
  });
}

/** The recipe of the allocation shown at `view`: what "Export recipe…" writes. */
export function recipeFor(
  curves: AllocationCurves,
  view: AllocationGoal,
): { recipe: Recipe; result: AllocationResult } {
  const v = usableGoal(view, curves.layers);
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
export function defaultGoal(curves: AllocationCurves, rank: number): AllocationGoal {
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
