/**
 * Rank (and weight-format) allocation under a memory budget.
 *
 * Every layer's error-versus-rank curve is known exactly from one decomposition per weight format
 * (LayerAnalysis.curves, with quantized A and B), and so is the storage of every (format, rank)
 * (lowRankCost). Choosing one point per layer to minimise the summed error under a total-bits
 * budget is a multiple-choice knapsack:
 *
 *   min Σ_l e_l(f_l, k_l)   s.t.   Σ_l bits_l(f_l, k_l) ≤ B.
 *
 * - `greedy`: each layer's points reduced to the lower convex hull of (bits, error); start every
 *   layer at its cheapest point and repeatedly take the hull step with the largest error decrease
 *   per bit that still fits (a step that does not fit is dropped, the others go on); then spend
 *   what is left on the best single-layer upgrade among all Pareto points, while one fits.
 * - `lpLowerBound`: the same hull steps taken in order of gain per bit, the last one fractionally:
 *   the optimum of the LP relaxation, a lower bound on the true optimum.
 * - `exact`: dynamic programming over a discretized budget. With each layer's extra cost rounded
 *   up to whole units the DP's answer is a feasible allocation (no better than the optimum); with
 *   costs rounded down it is a lower bound. So OPT lies in [max(lp, dpLow), min(greedy, dpHigh)],
 *   which is how far from optimal the greedy is shown to be.
 *
 * The objective (what "error" means across layers, `AllocationObjective`):
 * - 'output-relative' (default with calibration): e = tr(ΔW R ΔWᵀ) / tr(W R Wᵀ), each layer's
 *   output noise-to-signal ratio. Summing them assumes every layer's relative output noise hurts
 *   the model about equally; it is scale-free (a layer with large activations does not dominate)
 *   and needs no end-to-end sensitivity. 'output-absolute' sums tr(ΔW R ΔWᵀ) as it is.
 * - 'output-sensitivity': the relative output error weighted by a measured end-to-end sensitivity
 *   s_l (layerSensitivity.ts: the model's relative output deviation with only layer l quantized,
 *   divided by that layer's own relative output error there), so that each term estimates the
 *   deviation of the model's output that layer l causes, and the sum the whole model's under the
 *   usual additive-noise assumption. Needs an evaluable model (ONNX) and a few calibration inputs.
 * - 'weight-relative' / 'weight-absolute': the same with ‖ΔW‖²_F, for checkpoints without calibration.
 *
 * Fused groups (`AllocateOptions.fused`): runtimes that fuse projections need one format for the
 * fused weights — vLLM and TensorRT-LLM run q/k/v as one GEMM and gate/up as another, and a fused
 * MoE layer has one quantization method for all its experts. Layers carrying the same `fuse` key
 * (see `fuseKey`) then form one unit of the knapsack whose points, for each format they all have,
 * are the vertices of the lower convex hull of their summed (bits, error) — the members' hull
 * steps merged by gain per bit, each member keeping its own rank. The LP bound stays a bound on
 * the fused problem (that hull is the hull of every member-rank combination); the exact DP runs on
 * the hull points, so its answer is feasible but its rounded-down bound is not claimed.
 *
 * Browser-safe (no Node API, no kernels): the webview re-runs it instantly when the budget moves.
 */
import { QuantLensError } from '../errors';
import type { LayerAnalysis, OutputErrorKind } from './layerAnalysis';
import { metricsAtRank } from './metricsAtRank';
import type { Recipe } from './recipe';

export type AllocationObjective =
  'output-relative' | 'output-absolute' | 'output-sensitivity' | 'weight-relative' | 'weight-absolute';

export const ALLOCATION_OBJECTIVES: readonly AllocationObjective[] = [
  'output-relative',
  'output-absolute',
  'output-sensitivity',
  'weight-relative',
  'weight-absolute',
];

/** One weight format of one layer: cost and errors for k = 0…R. */
export interface AllocationOption {
  format: string;
  /** Total storage bits of W_q, A_k and B_k, k = 0…R. */
  bits: Float64Array;
  weightErrSq: Float64Array;
  outputErrSq: Float64Array | null;
}

export interface AllocationLayer {
  name: string;
  shape: [out: number, inFeatures: number];
  /** ‖W‖²_F and tr(W R Wᵀ) (null without calibration). */
  weightSq: number;
  outputSq: number | null;
  outputErrorKind: OutputErrorKind;
  options: AllocationOption[];
  /** End-to-end sensitivity s_l for the 'output-sensitivity' objective (layerSensitivity.ts). */
  sensitivity?: number;
  /** Layers with the same key share one format under `fused` allocation (q/k/v, gate/up, a block's experts). */
  fuse?: string;
}

export type Budget = { bitsPerWeight: number } | { bytes: number };

export interface LayerChoice {
  name: string;
  format: string;
  rank: number;
  bits: number;
  weightErrSq: number;
  outputErrSq: number | null;
  /** √(tr(ΔW R ΔWᵀ)/tr(W R Wᵀ)), the layer's relative output error; null without calibration. */
  outputError: number | null;
  /** This layer's term of the objective. */
  objective: number;
  /** The fused group the layer's format was chosen with (fused allocation only). */
  fuse?: string;
}

export interface AllocationSummary {
  choices: LayerChoice[];
  totalBits: number;
  /** totalBits / Σ n_in·n_out (A·B included). */
  bitsPerWeight: number;
  objective: number;
  /** √(Σ‖ΔW‖² / Σ‖W‖²) over the allocated layers. */
  weightError: number;
  /** Mean over layers of √(tr(ΔW R ΔWᵀ)/tr(W R Wᵀ)); null without calibration. */
  meanOutputError: number | null;
}

export interface UniformAllocation {
  format: string;
  /** The largest rank k (capped per layer at its own maximum) whose total fits the budget. */
  rank: number;
  summary: AllocationSummary;
}

export interface ExactAllocation {
  /** The DP with costs rounded up: a feasible allocation. */
  summary: AllocationSummary;
  /** The DP with costs rounded down: no allocation within the budget does better. */
  lowerBound: number;
  bins: number;
}

export interface AllocationResult {
  objective: AllocationObjective;
  budgetBits: number;
  /** Σ n_in·n_out over the layers. */
  weights: number;
  /** The cheapest possible total (every layer at its cheapest format, rank 0). */
  minimumBits: number;
  /** The best feasible allocation found: the greedy's, the exact DP's or a uniform one's. */
  best: AllocationSummary & { source: 'greedy' | 'exact' | 'uniform' };
  greedy: AllocationSummary;
  lpLowerBound: number;
  exact: ExactAllocation | null;
  /** Per format, the best uniform rank within the same budget (null when rank 0 does not fit). */
  uniform: (UniformAllocation | null)[];
  /** The uniform allocation with the smallest objective. */
  bestUniform: UniformAllocation | null;
}

export interface AllocateOptions {
  objective: AllocationObjective;
  /** Run the exact DP too (default true); `bins` discretizes the budget above the minimum (default 4000). */
  exact?: boolean;
  bins?: number;
  /** Layers with the same `fuse` key get one format (their ranks stay their own). */
  fused?: boolean;
}

/**
 * The fused group a layer belongs to, as runtimes fuse them: q/k/v of one attention module, gate/up
 * of one MLP, and every expert matrix of one MoE block; undefined for a layer that stands alone.
 */
export function fuseKey(l: { name: string; role: string; block: number | null; group?: string }): string | undefined {
  if (l.block === null) return undefined;
  if (l.group === 'expert') return `experts of block ${l.block}`;
  // The module holding the projection: "model.layers.0.self_attn" of "model.layers.0.self_attn.q_proj.weight".
  const parent = l.name.replace(/\.(weight|kernel)$/, '').replace(/[./][^./]*$/, '');
  if (l.role === 'q_proj' || l.role === 'k_proj' || l.role === 'v_proj') return `q/k/v of ${parent}`;
  if (l.role === 'gate_proj' || l.role === 'up_proj') return `gate/up of ${parent}`;
  return undefined;
}

/** The allocation inputs of one layer: one analysis per weight format (same layer, same method). */
export function allocationLayer(analyses: LayerAnalysis[]): AllocationLayer {
  const first = analyses[0];
  if (!first) throw new QuantLensError('bad-argument', 'a layer needs at least one analysis to allocate');
  return {
    name: first.name,
    shape: first.shape,
    weightSq: first.norms.weightSq,
    outputSq: first.norms.outputSq,
    outputErrorKind: first.outputErrorKind,
    options: analyses.map((a) => ({
      format: a.weightFormat,
      bits: Float64Array.from({ length: a.maxRank + 1 }, (_, k) => metricsAtRank(a, k).bytes * 8),
      weightErrSq: a.curves.weightErrSq,
      outputErrSq: a.curves.outputErrSq,
    })),
  };
}

/** Σ n_in·n_out of the layers. */
export function weightCount(layers: AllocationLayer[]): number {
  let n = 0;
  for (const l of layers) n += l.shape[0] * l.shape[1];
  return n;
}

export function budgetBits(layers: AllocationLayer[], budget: Budget): number {
  return 'bytes' in budget ? budget.bytes * 8 : budget.bitsPerWeight * weightCount(layers);
}

/** A candidate point of one layer, or of a fused group (then `ranks` holds each member's rank). */
interface Point {
  option: number;
  rank: number;
  cost: number;
  value: number;
  ranks?: Int32Array;
}

function pointValue(l: AllocationLayer, o: AllocationOption, k: number, objective: AllocationObjective): number {
  switch (objective) {
    case 'weight-absolute':
      return o.weightErrSq[k]!;
    case 'weight-relative':
      return l.weightSq > 0 ? o.weightErrSq[k]! / l.weightSq : 0;
    case 'output-absolute':
      return o.outputErrSq![k]!;
    case 'output-relative':
      return l.outputSq ? o.outputErrSq![k]! / l.outputSq : 0;
    case 'output-sensitivity':
      return l.outputSq ? (l.sensitivity! * o.outputErrSq![k]!) / l.outputSq : 0;
  }
}

function checkObjective(layers: AllocationLayer[], objective: AllocationObjective): void {
  if (!objective.startsWith('output')) return;
  const unmeasured = objective === 'output-sensitivity' ? layers.find((l) => !(l.sensitivity! >= 0)) : undefined;
  if (unmeasured) {
    throw new QuantLensError(
      'bad-argument',
      `the output-sensitivity objective needs a measured sensitivity for every layer ("${unmeasured.name}" has none)`,
    );
  }
  const missing = layers.find((l) => l.outputSq === null || l.options.some((o) => !o.outputErrSq));
  if (missing) {
    throw new QuantLensError(
      'needs-calibration',
      `the ${objective} objective needs calibration statistics for every layer ("${missing.name}" has none); use a weight objective`,
    );
  }
}

/** Points sorted by cost, then the Pareto front (cost ascending, value strictly descending). */
function pareto(all: Point[]): Point[] {
  all.sort((a, b) => a.cost - b.cost || a.value - b.value || a.rank - b.rank);
  const front: Point[] = [];
  for (const p of all) {
    if (!Number.isFinite(p.value)) continue;
    if (front.length === 0 || p.value < front[front.length - 1]!.value) front.push(p);
  }
  return front;
}

/** Every (format, rank) point of a layer, or of one of its formats. */
function layerPoints(l: AllocationLayer, objective: AllocationObjective, only?: number): Point[] {
  const all: Point[] = [];
  l.options.forEach((o, option) => {
    if (only !== undefined && option !== only) return;
    for (let k = 0; k < o.bits.length; k++) {
      all.push({ option, rank: k, cost: o.bits[k]!, value: pointValue(l, o, k, objective) });
    }
  });
  return all;
}

/** All points of a layer, then its Pareto front (cost ascending, value strictly descending). */
function paretoPoints(l: AllocationLayer, objective: AllocationObjective): Point[] {
  return pareto(layerPoints(l, objective));
}

/** A fused group's point: the group's format index, and each member's option index and rank. */
interface GroupPoint extends Point {
  ranks: Int32Array;
  options: Int32Array;
}

/**
 * The candidate points of a fused group: for each format every member has, the vertices of the
 * lower convex hull of the members' summed points (their hull steps merged by gain per bit).
 */
function groupFront(layers: AllocationLayer[], members: number[], objective: AllocationObjective): Point[] {
  const first = layers[members[0]!]!;
  const formats = first.options
    .map((o) => o.format)
    .filter((f) => members.every((i) => layers[i]!.options.some((o) => o.format === f)));
  const points: GroupPoint[] = [];
  formats.forEach((format, fi) => {
    const options = Int32Array.from(members, (i) => layers[i]!.options.findIndex((o) => o.format === format));
    const hulls = members.map((i, m) => lowerHull(pareto(layerPoints(layers[i]!, objective, options[m]))));
    if (hulls.some((h) => h.length === 0)) return;
    const at = new Int32Array(members.length);
    let cost = 0;
    let value = 0;
    for (const h of hulls) {
      cost += h[0]!.cost;
      value += h[0]!.value;
    }
    const snapshot = () =>
      points.push({
        option: fi,
        rank: 0,
        cost,
        value,
        options,
        ranks: Int32Array.from(hulls, (h, m) => h[at[m]!]!.rank),
      });
    snapshot();
    const heap = new StepHeap();
    hulls.forEach((h, m) => {
      if (h.length > 1) heap.push(stepRatio(h, 0), m);
    });
    while (heap.size) {
      const { layer: m } = heap.pop();
      const h = hulls[m]!;
      const i = at[m]!;
      cost += h[i + 1]!.cost - h[i]!.cost;
      value -= h[i]!.value - h[i + 1]!.value;
      at[m] = i + 1;
      if (i + 2 < h.length) heap.push(stepRatio(h, i + 1), m);
      snapshot();
    }
  });
  return pareto(points);
}

/** Layer indices grouped by fuse key (first appearance order); layers without a key alone. */
function fusedUnits(layers: AllocationLayer[]): number[][] {
  const units: number[][] = [];
  const byKey = new Map<string, number[]>();
  layers.forEach((l, i) => {
    if (l.fuse === undefined) {
      units.push([i]);
      return;
    }
    let u = byKey.get(l.fuse);
    if (!u) {
      byKey.set(l.fuse, (u = []));
      units.push(u);
    }
    u.push(i);
  });
  return units;
}

/** Each layer's own point from the units' picks. */
function expandPicks(
  layers: AllocationLayer[],
  units: number[][],
  picks: Point[],
  objective: AllocationObjective,
): Point[] {
  const out: Point[] = new Array<Point>(layers.length);
  units.forEach((u, j) => {
    const p = picks[j]!;
    if (u.length === 1) {
      out[u[0]!] = p;
      return;
    }
    const g = p as GroupPoint;
    u.forEach((i, m) => {
      const l = layers[i]!;
      const option = g.options[m]!;
      const rank = g.ranks[m]!;
      const o = l.options[option]!;
      out[i] = { option, rank, cost: o.bits[rank]!, value: pointValue(l, o, rank, objective) };
    });
  });
  return out;
}

/** Lower convex hull of a Pareto front (Andrew's monotone chain, lower part). */
function lowerHull(front: Point[]): Point[] {
  const h: Point[] = [];
  for (const p of front) {
    while (h.length >= 2) {
      const o = h[h.length - 2]!;
      const a = h[h.length - 1]!;
      const cross = (a.cost - o.cost) * (p.value - o.value) - (a.value - o.value) * (p.cost - o.cost);
      if (cross <= 0) h.pop();
      else break;
    }
    h.push(p);
  }
  return h;
}

function summarize(layers: AllocationLayer[], picks: Point[], fused = false): AllocationSummary {
  let totalBits = 0;
  let value = 0;
  let wErr = 0;
  let wRef = 0;
  let outSum = 0;
  let outAll = true;
  const choices = layers.map((l, i) => {
    const p = picks[i]!;
    const o = l.options[p.option]!;
    const weightErrSq = o.weightErrSq[p.rank]!;
    const outputErrSq = o.outputErrSq ? o.outputErrSq[p.rank]! : null;
    totalBits += p.cost;
    value += p.value;
    wErr += weightErrSq;
    wRef += l.weightSq;
    if (outputErrSq !== null && l.outputSq) outSum += Math.sqrt(outputErrSq / l.outputSq);
    else outAll = false;
    const outputError = outputErrSq !== null && l.outputSq ? Math.sqrt(outputErrSq / l.outputSq) : null;
    return {
      name: l.name,
      format: o.format,
      rank: p.rank,
      bits: p.cost,
      weightErrSq,
      outputErrSq,
      outputError,
      objective: p.value,
      ...(l.fuse !== undefined && fused ? { fuse: l.fuse } : {}),
    };
  });
  const weights = weightCount(layers);
  return {
    choices,
    totalBits,
    bitsPerWeight: weights > 0 ? totalBits / weights : 0,
    objective: value,
    weightError: wRef > 0 ? Math.sqrt(wErr / wRef) : 0,
    meanOutputError: outAll && layers.length ? outSum / layers.length : null,
  };
}

/** A max-heap of hull steps by gain per bit. */
class StepHeap {
  private items: { ratio: number; layer: number }[] = [];
  get size(): number {
    return this.items.length;
  }
  push(ratio: number, layer: number): void {
    const a = this.items;
    a.push({ ratio, layer });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.ratio >= a[i]!.ratio) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): { ratio: number; layer: number } {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.ratio > a[m]!.ratio) m = l;
        if (r < a.length && a[r]!.ratio > a[m]!.ratio) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

/** Gain per bit of the hull step from hull[i] to hull[i + 1]. */
function stepRatio(hull: Point[], i: number): number {
  const a = hull[i]!;
  const b = hull[i + 1]!;
  const dc = b.cost - a.cost;
  return dc > 0 ? (a.value - b.value) / dc : Infinity;
}

function greedyAllocation(hulls: Point[][], fronts: Point[][], budget: number): { picks: Point[]; lp: number } {
  const at = hulls.map(() => 0);
  let total = 0;
  let value = 0;
  for (const h of hulls) {
    total += h[0]!.cost;
    value += h[0]!.value;
  }
  const heap = new StepHeap();
  hulls.forEach((h, l) => {
    if (h.length > 1) heap.push(stepRatio(h, 0), l);
  });
  // The LP relaxation takes steps in the same order and a fraction of the first that does not fit.
  let lp: number | null = null;
  while (heap.size) {
    const { layer } = heap.pop();
    const h = hulls[layer]!;
    const i = at[layer]!;
    const dc = h[i + 1]!.cost - h[i]!.cost;
    const dv = h[i]!.value - h[i + 1]!.value;
    if (total + dc > budget) {
      lp ??= value - (dv * Math.max(0, budget - total)) / dc;
      continue; // this layer's further steps are dropped; other layers may still fit theirs
    }
    total += dc;
    value -= dv;
    at[layer] = i + 1;
    if (i + 2 < h.length) heap.push(stepRatio(h, i + 1), layer);
  }
  lp ??= value;
  const picks = hulls.map((h, l) => h[at[l]!]!);
  // Fill: the best single-layer upgrade among all Pareto points, while one fits.
  for (;;) {
    let best: { layer: number; p: Point; gain: number } | null = null;
    const left = budget - total;
    fronts.forEach((f, l) => {
      const cur = picks[l]!;
      for (const p of f) {
        if (p.cost - cur.cost > left) break;
        const gain = cur.value - p.value;
        if (gain > 0 && (!best || gain > best.gain)) best = { layer: l, p, gain };
      }
    });
    if (!best) break;
    const b: { layer: number; p: Point; gain: number } = best;
    total += b.p.cost - picks[b.layer]!.cost;
    picks[b.layer] = b.p;
  }
  return { picks, lp };
}

/** Multiple-choice knapsack by DP over `bins` units of the budget above the minimum. */
function dpAllocation(
  fronts: Point[][],
  budget: number,
  bins: number,
  round: 'up' | 'down',
): { value: number; picks: Point[] | null } {
  const minCost = fronts.map((f) => f[0]!.cost);
  const spare = budget - minCost.reduce((s, c) => s + c, 0);
  const unit = spare > 0 ? spare / bins : 1;
  const B = spare > 0 ? bins : 0;
  let dp = new Float64Array(B + 1); // dp[b]: best value of the layers so far within b units
  const choice = round === 'up' ? fronts.map(() => new Int32Array(B + 1)) : null;
  for (let l = 0; l < fronts.length; l++) {
    const f = fronts[l]!;
    const units = f.map((p) => {
      const u = (p.cost - minCost[l]!) / unit;
      // A hair of tolerance keeps exact multiples from being pushed up by rounding.
      return round === 'up' ? Math.ceil(u - 1e-9) : Math.floor(u + 1e-9);
    });
    const next = new Float64Array(B + 1).fill(Infinity);
    const ch = choice?.[l];
    for (let i = 0; i < f.length; i++) {
      const u = units[i]!;
      if (u > B) break; // the front is sorted by cost
      const v = f[i]!.value;
      for (let b = u; b <= B; b++) {
        const cand = dp[b - u]! + v;
        if (cand < next[b]!) {
          next[b] = cand;
          if (ch) ch[b] = i;
        }
      }
    }
    dp = next;
  }
  const value = dp[B]!;
  if (!choice) return { value, picks: null };
  const picks: Point[] = new Array<Point>(fronts.length);
  let b = B;
  for (let l = fronts.length - 1; l >= 0; l--) {
    const f = fronts[l]!;
    const i = choice[l]![b]!;
    picks[l] = f[i]!;
    b -= Math.ceil((f[i]!.cost - minCost[l]!) / unit - 1e-9);
  }
  return { value, picks };
}

/** The largest uniform rank within the budget, for one format index (formats are matched by name). */
function uniformAllocation(
  layers: AllocationLayer[],
  format: string,
  budget: number,
  objective: AllocationObjective,
): UniformAllocation | null {
  const options = layers.map((l) => l.options.findIndex((o) => o.format === format));
  if (options.some((i) => i < 0)) return null;
  const point = (l: number, k: number): Point => {
    const layer = layers[l]!;
    const o = layer.options[options[l]!]!;
    const r = Math.min(k, o.bits.length - 1);
    return { option: options[l]!, rank: r, cost: o.bits[r]!, value: pointValue(layer, o, r, objective) };
  };
  const maxK = Math.max(...layers.map((l, i) => l.options[options[i]!]!.bits.length - 1));
  let best: Point[] | null = null;
  let bestK = -1;
  for (let k = 0; k <= maxK; k++) {
    const picks = layers.map((_, l) => point(l, k));
    const total = picks.reduce((s, p) => s + p.cost, 0);
    if (total > budget) break; // costs never decrease with k
    best = picks;
    bestK = k;
  }
  return best ? { format, rank: bestK, summary: summarize(layers, best) } : null;
}

/** The formats every layer has, in the first layer's order. */
export function commonFormats(layers: AllocationLayer[]): string[] {
  const first = layers[0];
  if (!first) return [];
  return first.options.map((o) => o.format).filter((f) => layers.every((l) => l.options.some((o) => o.format === f)));
}

export function allocate(layers: AllocationLayer[], budget: Budget, options: AllocateOptions): AllocationResult {
  if (layers.length === 0) throw new QuantLensError('bad-argument', 'no layers to allocate');
  const { objective } = options;
  checkObjective(layers, objective);
  const B = budgetBits(layers, budget);
  const fused = !!options.fused && layers.some((l) => l.fuse !== undefined);
  const units = fused ? fusedUnits(layers) : layers.map((_, i) => [i]);
  const fronts = units.map((u) =>
    u.length === 1 ? paretoPoints(layers[u[0]!]!, objective) : groupFront(layers, u, objective),
  );
  const empty = fronts.findIndex((f) => f.length === 0);
  if (empty >= 0) {
    const u = units[empty]!;
    throw new QuantLensError(
      'bad-argument',
      u.length === 1
        ? `layer "${layers[u[0]!]!.name}" has no finite error values`
        : `the fused group "${layers[u[0]!]!.fuse}" has no weight format all its layers share`,
    );
  }
  const minimumBits = fronts.reduce((s, f) => s + f[0]!.cost, 0);
  const weights = weightCount(layers);
  if (minimumBits > B) {
    throw new QuantLensError(
      'bad-argument',
      `the budget (${(B / weights).toFixed(3)} bits/weight, ${(B / 8).toFixed(0)} bytes) is below the cheapest allocation (${(minimumBits / weights).toFixed(3)} bits/weight, ${(minimumBits / 8).toFixed(0)} bytes)`,
    );
  }
  const perLayer = (picks: Point[]) => summarize(layers, expandPicks(layers, units, picks, objective), fused);
  const hulls = fronts.map(lowerHull);
  const g = greedyAllocation(hulls, fronts, B);
  let exact: ExactAllocation | null = null;
  if (options.exact !== false) {
    const bins = options.bins ?? 4000;
    const high = dpAllocation(fronts, B, bins, 'up');
    // On a fused group's hull points the rounded-down DP bounds only those points, not the optimum.
    const grouped = units.some((u) => u.length > 1);
    const low = grouped ? null : dpAllocation(fronts, B, bins, 'down');
    exact = { summary: perLayer(high.picks!), lowerBound: low ? low.value : -Infinity, bins };
  }
  const uniform = commonFormats(layers).map((f) => uniformAllocation(layers, f, B, objective));
  let bestUniform: UniformAllocation | null = null;
  for (const u of uniform)
    if (u && (!bestUniform || u.summary.objective < bestUniform.summary.objective)) bestUniform = u;
  const greedy = perLayer(g.picks);
  let best: AllocationResult['best'] = { ...greedy, source: 'greedy' };
  if (exact && exact.summary.objective < best.objective) best = { ...exact.summary, source: 'exact' };
  // A uniform rank is a feasible allocation too; on a tiny budget it can beat the greedy's rounding.
  if (bestUniform && bestUniform.summary.objective < best.objective)
    best = { ...bestUniform.summary, source: 'uniform' };
  return {
    objective,
    budgetBits: B,
    weights,
    minimumBits,
    best,
    greedy,
    lpLowerBound: g.lp,
    exact,
    uniform,
    bestUniform,
  };
}

/** The best lower bound the result proves on the optimum. */
export function optimumLowerBound(r: AllocationResult): number {
  return Math.max(r.lpLowerBound, r.exact?.lowerBound ?? -Infinity);
}

export interface FrontierPoint {
  bitsPerWeight: number;
  uniformRank: number;
  uniform: number;
  allocated: number;
}

/**
 * Objective against budget for one format's uniform ranks and the greedy allocation at exactly the
 * same budgets (every uniform rank's own cost): the checkpoint overview's trade-off chart.
 */
export function allocationFrontier(
  layers: AllocationLayer[],
  format: string,
  objective: AllocationObjective,
  ranks?: number[],
  fused = false,
): FrontierPoint[] {
  checkObjective(layers, objective);
  const maxK = Math.max(...layers.map((l) => (l.options.find((o) => o.format === format)?.bits.length ?? 1) - 1));
  const ks = ranks ?? Array.from({ length: maxK + 1 }, (_, k) => k);
  const out: FrontierPoint[] = [];
  for (const k of ks) {
    const u = uniformAt(layers, format, k, objective);
    if (!u) continue;
    const a = allocate(layers, { bytes: u.totalBits / 8 }, { objective, exact: false, fused });
    out.push({ bitsPerWeight: u.bitsPerWeight, uniformRank: k, uniform: u.objective, allocated: a.best.objective });
  }
  return out;
}

/** The uniform allocation at rank k (capped per layer) for one format. */
export function uniformAt(
  layers: AllocationLayer[],
  format: string,
  k: number,
  objective: AllocationObjective,
): AllocationSummary | null {
  const picks: Point[] = [];
  for (const l of layers) {
    const option = l.options.findIndex((o) => o.format === format);
    if (option < 0) return null;
    const o = l.options[option]!;
    const r = Math.min(k, o.bits.length - 1);
    picks.push({ option, rank: r, cost: o.bits[r]!, value: pointValue(l, o, r, objective) });
  }
  return summarize(layers, picks);
}

/** The allocation as a recipe `quant-lens export --recipe` applies. */
export function allocationRecipe(
  summary: AllocationSummary,
  meta: { method: string; factorFormat: string; objective: AllocationObjective; budget: Budget },
): Recipe {
  const layers: Recipe['layers'] = {};
  for (const c of summary.choices) layers[c.name] = { format: c.format, rank: c.rank };
  return {
    kind: 'quant-lens-recipe',
    version: 1,
    method: meta.method,
    factorFormat: meta.factorFormat,
    objective: meta.objective,
    budget: 'bytes' in meta.budget ? { bytes: meta.budget.bytes } : { bitsPerWeight: meta.budget.bitsPerWeight },
    layers,
  };
}
