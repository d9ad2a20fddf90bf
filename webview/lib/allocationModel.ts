/**
 * The rank allocation section's numbers, from the curves the host sent: the budget's range, the
 * allocation and the uniform rank at a budget, the comparison rows, the chart series, the gap to
 * the optimum and the CLI line for the end-to-end metric. Pure; unit-tested.
 */
import {
  allocationFrontier,
  budgetBits,
  optimumLowerBound,
  weightCount,
  type AllocationLayer,
  type AllocationResult,
  type AllocationSummary,
  type FrontierPoint,
} from '../../src/engine/methods/allocation';
import { MIB, allocationAt, allocationFormatLabel } from '../../src/shared/allocation';
import { shortLayerName } from '../../src/shared/formatting';
import type { AllocationCurves, AllocationSupport, AllocationGoal, Budget } from '../../src/shared/protocol/overview';

export interface BudgetRange {
  /** Every layer at its cheapest format and rank 0. */
  minBitsPerWeight: number;
  /** Every layer at its most expensive format and the largest rank. */
  maxBitsPerWeight: number;
  weights: number;
}

export function budgetRange(layers: readonly AllocationLayer[]): BudgetRange {
  let min = 0;
  let max = 0;
  for (const l of layers) {
    let lo = Infinity;
    let hi = 0;
    for (const o of l.options) {
      for (const b of o.bits) {
        if (b < lo) lo = b;
        if (b > hi) hi = b;
      }
    }
    min += lo;
    max += hi;
  }
  const weights = weightCount([...layers]);
  return {
    minBitsPerWeight: weights ? min / weights : 0,
    maxBitsPerWeight: weights ? max / weights : 0,
    weights,
  };
}

/** The budget typed in the field: bits per weight, or MiB of the allocated layers. */
export function budgetOf(value: number, unit: AllocationGoal['unit']): Budget | null {
  if (!Number.isFinite(value) || value <= 0) return null;
  return unit === 'mib' ? { bytes: value * MIB } : { bitsPerWeight: value };
}

/** A budget in both units, over these layers. */
export function budgetInBoth(
  layers: readonly AllocationLayer[],
  budget: Budget,
): { bitsPerWeight: number; mib: number } {
  const bits = budgetBits([...layers], budget);
  const weights = weightCount([...layers]);
  return { bitsPerWeight: weights ? bits / weights : 0, mib: bits / 8 / MIB };
}

/** The value the budget field shows in its unit. */
export function budgetFieldValue(layers: readonly AllocationLayer[], view: AllocationGoal): number {
  const both = budgetInBoth(layers, view.budget);
  return view.unit === 'mib' ? both.mib : both.bitsPerWeight;
}

export type AllocationOutcome = { ok: true; result: AllocationResult } | { ok: false; message: string };

/**
 * The allocation at the view's budget. `exact`: with the DP bound (the budget field's value);
 * without, only the greedy (a slider being dragged).
 */
export function runAllocation(layers: AllocationLayer[], view: AllocationGoal, exact: boolean): AllocationOutcome {
  try {
    return { ok: true, result: allocationAt(layers, view, { exact }) };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

/** Σ of the per-layer relative errors, the two objectives the table compares. */
export interface SummaryErrors {
  bitsPerWeight: number;
  mib: number;
  objective: number;
  /** Σ_l ‖ΔW_l‖²/‖W_l‖² */
  weightRelSum: number;
  /** √(Σ‖ΔW‖²/Σ‖W‖²) over the layers. */
  weightError: number;
  /** Σ_l tr(ΔW R ΔWᵀ)/tr(W R Wᵀ); null without calibration. */
  outputRelSum: number | null;
  meanOutputError: number | null;
}

export function summaryErrors(layers: readonly AllocationLayer[], s: AllocationSummary): SummaryErrors {
  let weightRelSum = 0;
  let outputRelSum: number | null = 0;
  s.choices.forEach((c, i) => {
    const l = layers[i]!;
    weightRelSum += l.weightSq > 0 ? c.weightErrSq / l.weightSq : 0;
    if (outputRelSum !== null) {
      if (c.outputErrSq === null || !l.outputSq) outputRelSum = null;
      else outputRelSum += c.outputErrSq / l.outputSq;
    }
  });
  return {
    bitsPerWeight: s.bitsPerWeight,
    mib: s.totalBits / 8 / MIB,
    objective: s.objective,
    weightRelSum,
    weightError: s.weightError,
    outputRelSum,
    meanOutputError: s.meanOutputError,
  };
}

/** The allocation against the best uniform rank and format at the same budget. */
export interface AllocationVsUniform {
  allocated: SummaryErrors;
  allocatedSource: AllocationResult['best']['source'];
  uniform: (SummaryErrors & { rank: number; format: string }) | null;
  /** allocated / uniform objective (below 1: the allocation is better). */
  ratio: number | null;
  /** The greedy's objective over the best proven lower bound, minus one (0: provably optimal). */
  greedyGap: number;
  lowerBound: number;
}

export function allocationVsUniform(layers: readonly AllocationLayer[], r: AllocationResult): AllocationVsUniform {
  const u = r.bestUniform;
  const lb = optimumLowerBound(r);
  return {
    allocated: summaryErrors(layers, r.best),
    allocatedSource: r.best.source,
    uniform: u ? { ...summaryErrors(layers, u.summary), rank: u.rank, format: u.format } : null,
    ratio: u && u.summary.objective > 0 ? r.best.objective / u.summary.objective : null,
    greedyGap: lb > 0 ? Math.max(0, r.greedy.objective / lb - 1) : 0,
    lowerBound: lb,
  };
}

/** "model.layers.0.self_attn.q_proj.weight" → "0.self_attn.q_proj" (short enough for an axis). */
export function axisLabel(name: string): string {
  return shortLayerName(name).replace(/^layers\./, '');
}

export interface RankSeries {
  labels: string[];
  names: string[];
  allocated: number[];
  formats: string[];
  uniform: number[] | null;
  uniformFormat: string | null;
  /** Each layer's fused group (one format for all its layers), null when it stands alone or fusion is off. */
  groups: (string | null)[];
  /** The candidate formats in the curves' order, with the count of layers given each. */
  formatCounts: { format: string; label: string; layers: number }[];
}

export function rankSeries(layers: readonly AllocationLayer[], r: AllocationResult): RankSeries {
  const u = r.bestUniform;
  const formats = r.best.choices.map((c) => c.format);
  const candidates = layers[0]?.options.map((o) => o.format) ?? [];
  return {
    labels: r.best.choices.map((c) => axisLabel(c.name)),
    names: r.best.choices.map((c) => c.name),
    allocated: r.best.choices.map((c) => c.rank),
    formats,
    groups: r.best.choices.map((c) => c.fuse ?? null),
    uniform: u ? u.summary.choices.map((c) => c.rank) : null,
    uniformFormat: u?.format ?? null,
    formatCounts: candidates.map((format) => ({
      format,
      label: allocationFormatLabel(format),
      layers: formats.filter((f) => f === format).length,
    })),
  };
}

/**
 * Objective against bits per weight: each uniform rank of the first format, and the allocation at
 * exactly that rank's budget (the greedy only, fast), thinned to about `points` ranks.
 */
export function tradeoffCurve(
  curves: AllocationCurves,
  view: AllocationGoal,
  points = 24,
): { uniform: FrontierPoint[]; format: string } {
  const format = curves.request.formats[0]!;
  const maxK = Math.max(
    0,
    ...curves.layers.map((l) => (l.options.find((o) => o.format === format)?.bits.length ?? 1) - 1),
  );
  const step = Math.max(1, Math.ceil(maxK / points));
  const ranks: number[] = [];
  for (let k = 0; k <= maxK; k += step) ranks.push(k);
  if (ranks[ranks.length - 1] !== maxK) ranks.push(maxK);
  try {
    return { uniform: allocationFrontier(curves.layers, format, view.objective, ranks, !!view.fused), format };
  } catch {
    return { uniform: [], format };
  }
}

const quote = (p: string) => (/^[\w./:@%+=,-]+$/.test(p) ? p : `"${p.replace(/(["\\$`])/g, '\\$1')}"`);

/** The `quant-lens allocate` line that measures the end-to-end metric of this allocation. */
export function cliAllocateLine(
  support: Pick<AllocationSupport, 'checkpoint' | 'calibration' | 'evaluable'>,
  curves: AllocationCurves,
  view: AllocationGoal,
): string {
  const both = budgetInBoth(curves.layers, view.budget);
  const parts = ['quant-lens', 'allocate', quote(support.checkpoint)];
  if ('bytes' in view.budget) parts.push('--budget-bytes', String(Math.round(view.budget.bytes)));
  else parts.push('--budget-bits', String(Number(both.bitsPerWeight.toFixed(4))));
  parts.push('--formats', curves.request.formats.join(','));
  parts.push('--max-rank', String(curves.request.maxRank));
  parts.push('--method', curves.settings.method, '--ab-format', curves.settings.factorFormat);
  if (curves.calibration) parts.push('--calib', quote(curves.calibration));
  parts.push('--objective', view.objective);
  if (view.fused) parts.push('--fused');
  if (support.evaluable) parts.push('--eval-data', '<evaluation data>');
  parts.push('--out', 'recipe.json');
  return parts.join(' ');
}
