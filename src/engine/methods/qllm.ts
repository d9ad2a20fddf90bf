/**
 * QLLM's adaptive channel reassembly (docs/algorithms.md §5), as an analysis of one reassembly site: the
 * input of a linear layer, or the shared input of several (q/k/v, gate/up), with a sample of
 * calibration activation rows X [T, C] and the consumers' stacked weight W [Σout, C].
 *
 * As the official code does it (ModelTC/QLLM @ 653a329, reassembly/cr_module.py, assembly/ca_module.py):
 * - Channel disassembly at θ: channel c splits into T_c = max(1, ⌈x_max,c / θ⌉) copies, the
 *   activation of each scaled by 1/T_c, the weight column repeated unchanged (exact in float).
 * - Channel assembly (ToMe-style bipartite matching): channels at even positions form A, odd
 *   positions B; score_ij = ((Σ_o W[o,a_i] + Σ_o W[o,b_j]) · ‖x_{a_i} − x_{b_j}‖₂)², with a signed
 *   column sum and the L2 distance over all sample tokens; split channels are excluded (score set
 *   to +max). Each a_i takes its best b_j; the r = Σ(T_c − 1) best edges merge: activation → mean
 *   over the merged group (x_b + Σx_a)/(1 + n), weight → sum W_b + ΣW_a; a is dropped.
 *   Quirks kept as coded: the A-side term is filled only for i < |B|, so with an odd channel count
 *   the last A channel's weight sum is missing from its scores; and when r exceeds the unsplit A
 *   channels (only past QLLM's channel budget), masked rows, all at +max, merge into B's first.
 * - θ search: θ from max_c x_max down in steps (max − min)/step_num, step_num = max(100, ⌊max/0.5⌋),
 *   stopping when the extra channels exceed ⌊channel_ratio·C⌋; for every θ that changes the channel
 *   count, assemble first (outlier channels masked) then disassemble, and measure
 *   MSE(X·Wᵀ, Q_a(X')·Q_w(W')ᵀ) with per-token asymmetric activation and per-output-channel
 *   asymmetric weight quantization. The initial best MSE is 1e5 (so the no-reassembly θ is never
 *   measured and a reassembly is applied whenever any θ scores below 1e5).
 * - The chosen θ is applied the other way round: disassemble, then assemble on the disassembled
 *   channels (r capped at half of them), back to C channels.
 *
 * Our choices, not QLLM's:
 * - f is the stacked linear output X·Wᵀ of the site's consumers for every site; QLLM measures the
 *   q/k/v site through RoPE and softmax attention and the gate/up site through SiLU(gate)·up.
 * - The quantizers are Quant Lens's INT asymmetric kernels (intGroup.ts; a constant group is exact
 *   where QLLM clamps Δ ≥ 1e-5) with one group per token row / per weight row.
 * - The reference beside it: the same consumers with per-channel INT weights plus an L²QER rank-k
 *   correction (A·B in the factor format, folded into Ŵ), under the same activation quantizer; and
 *   L²QER on top of the reassembled site.
 * - QLLM's gradient-based low-rank tuning (LoRA on quantized blocks, §5.5) is out of scope.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { kernels, mat } from '../linalg';
import { StepClock } from '../linalg/progress';
import { fakeQuantize, parseFormat, type NumberFormat } from '../quantizers';
import type { LinearLayer } from '../readers/checkpoint';
import { reconstructLayer } from './reconstruct';

import type {
  ActivationRange,
  ReassembledChannel,
  ReassemblyConsumer,
  ReassemblyOptions,
  ReassemblyResult,
  ReassemblySite,
  ReassemblySiteInput,
  SiteErrors,
} from './reassemblyTypes';

const DEFAULTS = { weightBits: 4, actBits: 4, channelRatio: 0.2, rank: 32, factorFormat: 'mxint8' };

/** QLLM's quantizers as Quant Lens formats: per-token and per-output-channel asymmetric INT. */
function perRow(bits: number): NumberFormat {
  return parseFormat(`int${bits}:channel`);
}

/** Column sums Σ_o W[o, c] of the stacked consumers. */
function columnSums(consumers: ReassemblyConsumer[], C: number): Float64Array {
  const s = new Float64Array(C);
  for (const k of consumers) {
    for (let o = 0; o < k.out; o++) for (let c = 0; c < C; c++) s[c]! += k.weight[o * C + c]!;
  }
  return s;
}

function channelMaxAbs(x: Float32Array, rows: number, C: number): Float32Array {
  const m = new Float32Array(C);
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < C; c++) {
      const v = Math.abs(x[t * C + c]!);
      if (v > m[c]!) m[c] = v;
    }
  }
  return m;
}

function activationRange(x: Float32Array, rows: number, C: number): ActivationRange {
  let maxAbs = 0;
  let range = 0;
  for (let t = 0; t < rows; t++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < C; c++) {
      const v = x[t * C + c]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
    }
    range += hi - lo;
  }
  return { maxAbs, meanTokenRange: rows ? range / rows : 0 };
}

/** X' [rows, C'] and the stacked W' [Σout, C'] of a reassembly. */
function applyChannels(
  x: Float32Array,
  rows: number,
  C: number,
  consumers: ReassemblyConsumer[],
  channels: ReassembledChannel[],
): { x: Float32Array; w: Float32Array; cols: number; out: number } {
  const n = channels.length;
  const xr = new Float32Array(rows * n);
  for (let j = 0; j < n; j++) {
    const { members, alpha } = channels[j]!;
    for (let t = 0; t < rows; t++) {
      let v = 0;
      for (let m = 0; m < members.length; m++) v += alpha[m]! * x[t * C + members[m]!]!;
      xr[t * n + j] = v;
    }
  }
  const out = consumers.reduce((s, k) => s + k.out, 0);
  const wr = new Float32Array(out * n);
  let row = 0;
  for (const k of consumers) {
    for (let o = 0; o < k.out; o++, row++) {
      for (let j = 0; j < n; j++) {
        let v = 0;
        for (const c of channels[j]!.members) v += k.weight[o * C + c]!;
        wr[row * n + j] = v;
      }
    }
  }
  return { x: xr, w: wr, cols: n, out };
}

function stack(consumers: ReassemblyConsumer[], C: number): Float32Array {
  const out = new Float32Array(consumers.reduce((s, k) => s + k.out * C, 0));
  let off = 0;
  for (const k of consumers) {
    out.set(k.weight, off);
    off += k.out * C;
  }
  return out;
}

/** Y = X·Wᵀ [rows, out] through the GEMM kernels (float32: the MSEs compare quantized outputs). */
async function linearOutput(
  x: Float32Array,
  rows: number,
  cols: number,
  w: Float32Array,
  out: number,
): Promise<Float32Array> {
  const y = await kernels().matmul(mat(x, rows, cols), mat(w, out, cols), { transB: true });
  return y.data;
}

function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return a.length ? s / a.length : 0;
}

/** Site errors of (X', W') against the float output Y. */
async function siteErrors(
  y: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  wq: Float32Array,
  out: number,
  actFormat: NumberFormat,
): Promise<SiteErrors> {
  const xq = fakeQuantize(x, rows, cols, actFormat);
  return {
    quantizedMse: mse(y, await linearOutput(xq, rows, cols, wq, out)),
    weightOnlyMse: mse(y, await linearOutput(x, rows, cols, wq, out)),
  };
}

/** Pairwise distances ‖x_a − x_b‖₂ from the Gram of the columns. */
function distance(G: Float64Array, C: number, a: number, b: number, sa: number, sb: number): number {
  return Math.sqrt(Math.max(0, G[a * C + a]! * sa * sa + G[b * C + b]! * sb * sb - 2 * G[a * C + b]! * sa * sb));
}

/**
 * One disassembled or original channel as the matcher sees it: its source channel, the scale its
 * activation carries, and whether it is a split part (excluded from matching).
 */
interface MatchChannel {
  source: number;
  scale: number;
  split: boolean;
}

/**
 * QLLM's bipartite matching over `list` (A = even positions, B = odd): the r best (src, dst)
 * position pairs, as coded (see the file comment for the score and its quirk).
 */
function bipartiteMerges(
  list: MatchChannel[],
  G: Float64Array,
  C: number,
  colSum: Float64Array,
  r: number,
): { src: number; dst: number }[] {
  const nA = Math.ceil(list.length / 2);
  const nB = Math.floor(list.length / 2);
  if (r <= 0 || nB === 0) return [];
  const best = new Float64Array(nA);
  const bestJ = new Int32Array(nA);
  for (let i = 0; i < nA; i++) {
    const a = list[2 * i]!;
    let m = Infinity;
    let mj = 0;
    for (let j = 0; j < nB; j++) {
      const b = list[2 * j + 1]!;
      let score: number;
      if (a.split || b.split) score = Number.MAX_VALUE;
      else {
        const d = distance(G, C, a.source, b.source, a.scale, b.scale);
        const termA = i < nB ? colSum[a.source]! * d : 0; // as coded: rows ≥ |B| keep 0
        const termB = colSum[b.source]! * d;
        score = (termA + termB) ** 2;
      }
      if (score < m) {
        m = score;
        mj = j;
      }
    }
    best[i] = m;
    bestJ[i] = mj;
  }
  const order = Array.from({ length: nA }, (_, i) => i).sort((p, q) => best[p]! - best[q]! || p - q);
  return order.slice(0, Math.min(r, nA)).map((i) => ({ src: 2 * i, dst: 2 * bestJ[i]! + 1 }));
}

/**
 * Merges position pairs of `list` (activation: mean over the group, weight: sum); returns the
 * surviving channels in order, each with the original members and their activation coefficients.
 */
function assemble(
  groups: ReassembledChannel[],
  merges: { src: number; dst: number }[],
): { channels: ReassembledChannel[]; groupOf: number[] } {
  const into = new Map<number, number[]>();
  const removed = new Set<number>();
  for (const { src, dst } of merges) {
    removed.add(src);
    const l = into.get(dst) ?? [];
    l.push(src);
    into.set(dst, l);
  }
  const channels: ReassembledChannel[] = [];
  const groupOf: number[] = [];
  groups.forEach((g, p) => {
    if (removed.has(p)) return;
    const srcs = into.get(p);
    if (!srcs) {
      channels.push(g);
      groupOf.push(p);
      return;
    }
    // scatter_reduce(mean, include_self): (x_b + Σ x_a) / (1 + n); weights add up.
    const all = [g, ...srcs.map((s) => groups[s]!)];
    const k = all.length;
    const members: number[] = [];
    const alpha: number[] = [];
    for (const h of all) {
      h.members.forEach((c, m) => {
        members.push(c);
        alpha.push(h.alpha[m]! / k);
      });
    }
    channels.push({ members, alpha });
    groupOf.push(p);
  });
  return { channels, groupOf };
}

function identityChannels(C: number): ReassembledChannel[] {
  return Array.from({ length: C }, (_, c) => ({ members: [c], alpha: [1] }));
}

function splitCounts(channelMax: Float32Array, theta: number): Int32Array {
  return Int32Array.from(channelMax, (m) => Math.max(1, Math.ceil(m / theta)));
}

/** The search's configuration at θ: assemble (outliers masked) first, then disassemble. */
function searchChannels(T: Int32Array, extra: number, G: Float64Array, colSum: Float64Array): ReassembledChannel[] {
  const C = T.length;
  const list: MatchChannel[] = Array.from({ length: C }, (_, c) => ({ source: c, scale: 1, split: T[c]! > 1 }));
  const merges = bipartiteMerges(list, G, C, colSum, extra);
  const { channels, groupOf } = assemble(identityChannels(C), merges);
  // assemble_vector: the group's split count and scaling factor are means over its members.
  const srcOf = new Map<number, number[]>();
  for (const { src, dst } of merges) srcOf.set(dst, [...(srcOf.get(dst) ?? []), src]);
  const out: ReassembledChannel[] = [];
  channels.forEach((ch, i) => {
    const p = groupOf[i]!;
    const ids = [p, ...(srcOf.get(p) ?? [])];
    const meanT = ids.reduce((s, q) => s + T[q]!, 0) / ids.length;
    const meanScale = ids.reduce((s, q) => s + 1 / T[q]!, 0) / ids.length;
    const parts = Math.trunc(meanT); // .int() truncates
    for (let k = 0; k < parts; k++) out.push({ members: ch.members, alpha: ch.alpha.map((a) => a * meanScale) });
  });
  return out;
}

/** The applied configuration at θ: disassemble, then assemble the disassembled channels. */
function appliedChannels(
  T: Int32Array,
  extra: number,
  G: Float64Array,
  colSum: Float64Array,
): { channels: ReassembledChannel[]; merges: { src: number; dst: number }[] } {
  const C = T.length;
  const list: MatchChannel[] = [];
  const dis: ReassembledChannel[] = [];
  for (let c = 0; c < C; c++) {
    for (let k = 0; k < T[c]!; k++) {
      list.push({ source: c, scale: 1 / T[c]!, split: T[c]! !== 1 });
      dis.push({ members: [c], alpha: [1 / T[c]!] });
    }
  }
  const r = Math.min(extra, Math.floor(list.length / 2));
  const merges = bipartiteMerges(list, G, C, colSum, r);
  const { channels } = assemble(dis, merges);
  return { channels, merges: merges.map((m) => ({ src: list[m.src]!.source, dst: list[m.dst]!.source })) };
}

function meanAbsOf(x: Float32Array, rows: number, C: number): Float32Array {
  const m = new Float32Array(C);
  for (let t = 0; t < rows; t++) for (let c = 0; c < C; c++) m[c]! += Math.abs(x[t * C + c]!) / rows;
  return m;
}

/** Ŵ of every consumer with per-channel INT weights and an L²QER rank-k correction, stacked. */
async function l2qerWeights(
  consumers: ReassemblyConsumer[],
  cols: number,
  meanAbs: Float32Array,
  bits: number,
  rank: number,
  factorFormat: string,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (const k of consumers) {
    const r = await reconstructLayer(
      { name: k.name, data: k.weight, out: k.out, in: cols, calibration: { meanAbs } },
      { method: 'l2qer', weightFormat: `int${bits}:channel`, factorFormat, factorTiling: 'last-dim' },
      rank,
      signal,
    );
    parts.push(r.weight);
  }
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function splitConsumers(w: Float32Array, consumers: ReassemblyConsumer[], cols: number): ReassemblyConsumer[] {
  let off = 0;
  return consumers.map((k) => {
    const part = w.slice(off, off + k.out * cols);
    off += k.out * cols;
    return { name: k.name, weight: part, out: k.out };
  });
}

export async function analyzeReassembly(
  input: ReassemblySiteInput,
  options: ReassemblyOptions = {},
): Promise<ReassemblyResult> {
  const o = { ...DEFAULTS, ...options };
  const { samples: x, rows, channels: C, consumers } = input;
  const { signal } = o;
  if (x.length !== rows * C)
    throw new QuantLensError('bad-argument', `samples have ${x.length} values, expected ${rows}×${C}`);
  if (rows === 0) throw new QuantLensError('needs-calibration', `no activation samples for site "${input.site}"`);
  for (const k of consumers) {
    if (k.weight.length !== k.out * C) throw new QuantLensError('bad-argument', `"${k.name}" is not [out, ${C}]`);
  }
  const actFormat = perRow(o.actBits);
  const wFormat = perRow(o.weightBits);
  const clock = new StepClock(signal);
  const W = stack(consumers, C);
  const outAll = consumers.reduce((s, k) => s + k.out, 0);
  const y = await linearOutput(x, rows, C, W, outAll);
  let power = 0;
  for (const v of y) power += v * v;
  const outputPower = y.length ? power / y.length : 0;
  const X64 = mat(Float64Array.from(x), rows, C);
  const G = (await kernels().matmul(X64, X64, { transA: true })).data; // Σ_t x xᵀ (cdist over tokens)
  const colSum = columnSums(consumers, C);
  const channelMax = channelMaxAbs(x, rows, C);
  const notes = [
    "QLLM's gradient-based low-rank tuning (LoRA on quantized blocks) is out of scope: this is the gradient-free reassembly only.",
  ];
  if (consumers.length > 1) {
    notes.push(
      'Shared site: the MSE is over the stacked linear outputs, not through attention or SiLU(gate)·up as QLLM measures it.',
    );
  }

  // θ search, as coded.
  let maxC = 0;
  let minC = Infinity;
  for (const v of channelMax) {
    if (v > maxC) maxC = v;
    if (v < minC) minC = v;
  }
  const stepNum = Math.max(100, Math.floor(maxC / 0.5));
  const step = (maxC - minC) / stepNum;
  const constraint = Math.floor(C * o.channelRatio);
  const search = { theta: [] as number[], extraChannels: [] as number[], mse: [] as number[] };
  let minLoss = 100000;
  let bestTheta = maxC;
  let previous = 0;
  let th = maxC;
  for (let cnt = 0; th >= minC && cnt < stepNum && step > 0; cnt++, th -= step) {
    const T = splitCounts(channelMax, th);
    const extra = T.reduce((s, v) => s + v, 0) - C;
    if (extra > constraint) break;
    if (extra !== previous) {
      const chans = searchChannels(T, extra, G, colSum);
      const re = applyChannels(x, rows, C, consumers, chans);
      const wq = fakeQuantize(re.w, re.out, re.cols, wFormat);
      const xq = fakeQuantize(re.x, rows, re.cols, actFormat);
      const loss = mse(y, await linearOutput(xq, rows, re.cols, wq, re.out));
      search.theta.push(th);
      search.extraChannels.push(extra);
      search.mse.push(loss);
      if (loss < minLoss) {
        minLoss = loss;
        bestTheta = th;
      }
      previous = extra;
    }
    if (clock.due()) await clock.tick();
  }
  throwIfCancelled(signal);

  // Apply the chosen θ (disassemble, then assemble).
  const T = splitCounts(channelMax, bestTheta);
  const hasOutliers = channelMax.some((m) => m > bestTheta);
  const extra = T.reduce((s, v) => s + v, 0) - C;
  const applied = hasOutliers ? appliedChannels(T, extra, G, colSum) : { channels: identityChannels(C), merges: [] };
  const re = applyChannels(x, rows, C, consumers, applied.channels);

  const before = {
    range: activationRange(x, rows, C),
    ...(await siteErrors(y, x, rows, C, fakeQuantize(W, outAll, C, wFormat), outAll, actFormat)),
  };
  const floatMse = mse(y, await linearOutput(re.x, rows, re.cols, re.w, re.out));
  const after = {
    range: activationRange(re.x, rows, re.cols),
    channelMax: channelMaxAbs(re.x, rows, re.cols),
    floatMse,
    ...(await siteErrors(y, re.x, rows, re.cols, fakeQuantize(re.w, re.out, re.cols, wFormat), re.out, actFormat)),
  };
  if (hasOutliers && after.quantizedMse > before.quantizedMse) {
    notes.push(
      'The applied reassembly (disassemble, then assemble) is worse than none on this site: the search scores the other order (assemble, then disassemble), and QLLM applies its θ anyway, as reported here.',
    );
  }

  // References: L²QER on the original site, and on the reassembled one, same quantizers.
  const meanAbs = input.meanAbs ?? meanAbsOf(x, rows, C);
  const wL2 = await l2qerWeights(consumers, C, meanAbs, o.weightBits, o.rank, o.factorFormat, signal);
  const l2qer = {
    rank: o.rank,
    factorFormat: o.factorFormat,
    ...(await siteErrors(y, x, rows, C, wL2, outAll, actFormat)),
  };
  const reConsumers = splitConsumers(re.w, consumers, re.cols);
  const wReL2 = await l2qerWeights(
    reConsumers,
    re.cols,
    meanAbsOf(re.x, rows, re.cols),
    o.weightBits,
    o.rank,
    o.factorFormat,
    signal,
  );
  const reassembledL2qer = await siteErrors(y, re.x, rows, re.cols, wReL2, re.out, actFormat);

  return {
    site: input.site,
    consumers: consumers.map((k) => k.name),
    channels: C,
    rows,
    weightBits: o.weightBits,
    actBits: o.actBits,
    channelRatio: o.channelRatio,
    channelMax,
    threshold: hasOutliers ? bestTheta : null,
    splits: hasOutliers ? [...T].flatMap((parts, channel) => (parts > 1 ? [{ channel, parts }] : [])) : [],
    extraChannels: hasOutliers ? extra : 0,
    merges: applied.merges,
    search,
    outputPower,
    before,
    after,
    l2qer,
    reassembledL2qer,
    helps: hasOutliers && after.quantizedMse < before.quantizedMse,
    notes,
  };
}

/** Exposed for tests: disassembly alone at θ (split parts, no assembly). */
export function disassembledChannels(channelMax: Float32Array, theta: number): ReassembledChannel[] {
  const T = splitCounts(channelMax, theta);
  const out: ReassembledChannel[] = [];
  T.forEach((t, c) => {
    for (let k = 0; k < t; k++) out.push({ members: [c], alpha: [1 / t] });
  });
  return out;
}

/** Exposed for tests: the applied reassembly at θ for given samples and consumers. */
export async function reassembleAt(
  input: ReassemblySiteInput,
  theta: number,
): Promise<{
  channels: ReassembledChannel[];
  merges: { src: number; dst: number }[];
  x: Float32Array;
  w: Float32Array;
  cols: number;
}> {
  const { samples: x, rows, channels: C, consumers } = input;
  const X64 = mat(Float64Array.from(x), rows, C);
  const G = (await kernels().matmul(X64, X64, { transA: true })).data;
  const T = splitCounts(channelMaxAbs(x, rows, C), theta);
  const extra = T.reduce((s, v) => s + v, 0) - C;
  const a = appliedChannels(T, extra, G, columnSums(consumers, C));
  const re = applyChannels(x, rows, C, consumers, a.channels);
  return { channels: a.channels, merges: a.merges, x: re.x, w: re.w, cols: re.cols };
}

/** Exposed for tests and the layer panel: X', W' for any channel list. */
export function reassembledTensors(
  input: ReassemblySiteInput,
  channels: ReassembledChannel[],
): { x: Float32Array; w: Float32Array; cols: number } {
  const re = applyChannels(input.samples, input.rows, input.channels, input.consumers, channels);
  return { x: re.x, w: re.w, cols: re.cols };
}

/** Name patterns of consumers that share one input (q/k/v, gate/up) when the graph does not say. */
const SHARED_INPUT: [RegExp, string][] = [
  [/(^|[._/])(q_proj|k_proj|v_proj)((\.weight)?)$/, '$1{q,k,v}_proj$3'],
  [/(^|[._/])(attn_q|attn_k|attn_v)((\.weight)?)$/, '$1attn_{q,k,v}$3'],
  [/(^|[._/])(query|key|value)((\.weight)?)$/, '$1{query,key,value}$3'],
  [/(^|[._/])(gate_proj|up_proj)((\.weight)?)$/, '$1{gate,up}_proj$3'],
  [/(^|[._/])(ffn_gate|ffn_up)((\.weight)?)$/, '$1ffn_{gate,up}$3'],
  [/(^|[._/])(w1|w3)((\.weight)?)$/, '$1{w1,w3}$3'],
];

/**
 * Reassembly sites of a checkpoint: layers that read the same activation are one site. ONNX graphs
 * say it directly (the linear nodes' activation input); elsewhere the naming tells q/k/v and gate/up.
 */
export function reassemblySites(layers: LinearLayer[]): ReassemblySite[] {
  const sites = new Map<string, ReassemblySite>();
  for (const l of layers) {
    let key = l.onnx ? l.onnx.activationInput : l.name;
    if (!l.onnx) {
      for (const [re, tag] of SHARED_INPUT) {
        if (re.test(l.name)) {
          key = l.name.replace(re, tag);
          break;
        }
      }
    }
    const id = `${key}\u0000${l.shape[1]}`;
    const s = sites.get(id);
    if (s) s.layers.push(l.name);
    else
      sites.set(id, {
        site: l.onnx && key === l.onnx.activationInput ? `${key} → ${l.name}` : key,
        layers: [l.name],
        channels: l.shape[1],
      });
  }
  // Name ONNX sites shared by several layers after their input alone.
  for (const s of sites.values()) if (s.layers.length > 1 && s.site.includes(' → ')) s.site = s.site.split(' → ')[0]!;
  return [...sites.values()];
}
