/**
 * Two checkpoints of one architecture, layer by layer: the difference ΔW = W₂ − W₁ read as if it
 * were a quantization error (a model before and after quantization-aware training, an original and
 * its GGUF-quantized copy, two fine-tunes): its size relative to W₁, its largest entry, its
 * singular-value spectrum (how low-rank the change is), and whether the layer changed at all.
 *
 * Pairing: the same weight name first; then the same (block, role, expert) as the layer discovery
 * names them, so a Hugging Face checkpoint pairs with its GGUF conversion (model.layers.3.mlp.up_proj
 * ↔ blk.3.ffn_up). Shapes must agree ([out, in], whatever each file stores).
 *
 * llama.cpp's converter permutes the rows of q_proj and k_proj (its RoPE layout: within each head,
 * the two halves are interleaved). When exactly one side is GGUF and the head counts are in its
 * metadata, both orientations are tried for those layers and the one with the smaller difference is
 * kept, flagged `ropeUnpermuted`.
 */
import { throwIfCancelled } from '../errors';
import { mat, singularValues } from '../linalg';
import type { Checkpoint, LinearLayer } from '../readers/checkpoint';
import { countNonFinite } from '../readers/dtypes';

import {
  DEFAULT_CHANGE_TOLERANCE,
  type ChangeVerdict,
  type CheckpointComparison,
  type LayerDifference,
} from './checkpointComparisonTypes';

export { DEFAULT_CHANGE_TOLERANCE, type ChangeVerdict, type CheckpointComparison, type LayerDifference };

export interface CompareOptions {
  /** A layer whose relative difference is at most this counts as unchanged (default 5e-3, above bf16/fp16 rounding). */
  tolerance?: number;
  /** Compute the full spectrum of each ΔW (default true; O(n³) per layer). */
  spectra?: boolean;
  /** Only these layer names of the first checkpoint (default: all linear layers). */
  layers?: string[];
  signal?: AbortSignal;
  onLayer?: (done: number, total: number, layer: string) => void;
}

function pairKey(l: LinearLayer): string | null {
  if (l.block === null || l.role === 'linear' || l.role === 'conv1x1') return null;
  return `${l.block}|${l.role}|${l.expert ?? ''}`;
}

/** Pairs the linear layers of A with those of B: by name, then by (block, role, expert). */
export function pairLayers(
  a: LinearLayer[],
  b: LinearLayer[],
): { pairs: [LinearLayer, LinearLayer][]; onlyInA: LinearLayer[]; onlyInB: LinearLayer[] } {
  const byName = new Map(b.map((l) => [l.name, l]));
  const used = new Set<string>();
  const pairs: [LinearLayer, LinearLayer][] = [];
  const rest: LinearLayer[] = [];
  for (const l of a) {
    const m = byName.get(l.name);
    if (m) {
      pairs.push([l, m]);
      used.add(m.name);
    } else rest.push(l);
  }
  const keyed = new Map<string, LinearLayer[]>();
  for (const l of b) {
    if (used.has(l.name)) continue;
    const k = pairKey(l);
    if (k) keyed.set(k, [...(keyed.get(k) ?? []), l]);
  }
  const onlyInA: LinearLayer[] = [];
  for (const l of rest) {
    const k = pairKey(l);
    const cands = k ? keyed.get(k) : undefined;
    if (cands && cands.length === 1 && !used.has(cands[0]!.name)) {
      pairs.push([l, cands[0]!]);
      used.add(cands[0]!.name);
    } else onlyInA.push(l);
  }
  return { pairs, onlyInA, onlyInB: b.filter((l) => !used.has(l.name)) };
}

/** llama.cpp's q/k row order back to Hugging Face's: GGUF row h·d + 2j + i holds HF row h·d + i·d/2 + j. */
export function unpermuteRope(w: Float32Array, out: number, nIn: number, heads: number): Float32Array | null {
  if (heads <= 0 || out % heads !== 0 || (out / heads) % 2 !== 0) return null;
  const d = out / heads;
  const half = d / 2;
  const r = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < half; j++) {
        const hf = h * d + i * half + j;
        const gg = h * d + 2 * j + i;
        r.set(w.subarray(gg * nIn, (gg + 1) * nIn), hf * nIn);
      }
    }
  }
  return r;
}

function ggufHeads(ck: Checkpoint, role: string): number | null {
  const arch = ck.metadata['general.architecture'];
  if (!arch) return null;
  const q = Number(ck.metadata[`${arch}.attention.head_count`]);
  const kv = Number(ck.metadata[`${arch}.attention.head_count_kv`] ?? q);
  const n = role === 'k_proj' ? kv : q;
  return Number.isInteger(n) && n > 0 ? n : null;
}

interface Difference {
  d: Float32Array;
  norm: number;
  maxAbs: number;
  /** Entries that are NaN or infinite on either side: left out of d (0 there) and of the norms. */
  nonFinite: number;
  /** Whether the two sides are non-finite at different entries (or with different values). */
  nonFiniteDiffers: boolean;
}

function difference(a: Float32Array, b: Float32Array): Difference {
  const d = new Float32Array(a.length);
  let s = 0;
  let m = 0;
  let nonFinite = 0;
  let nonFiniteDiffers = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      nonFinite++;
      if (!Object.is(x, y)) nonFiniteDiffers = true;
      continue;
    }
    const v = y - x;
    d[i] = v;
    s += v * v;
    if (Math.abs(v) > m) m = Math.abs(v);
  }
  return { d, norm: Math.sqrt(s), maxAbs: m, nonFinite, nonFiniteDiffers };
}

/** The norm over finite entries (NaN or infinite weights are counted apart). */
function norm(a: Float32Array): number {
  let s = 0;
  for (const v of a) if (Number.isFinite(v)) s += v * v;
  return Math.sqrt(s);
}

function nonFiniteCount(a: Float32Array): number {
  const c = countNonFinite(a);
  return c.nan + c.inf;
}

function spectrumSummary(sigma: Float64Array, diffNorm: number): { rank90: number | null; stableRank: number | null } {
  if (sigma.length === 0) return { rank90: null, stableRank: null };
  const total = diffNorm * diffNorm;
  if (total === 0) return { rank90: 0, stableRank: null };
  let acc = 0;
  let rank90 = sigma.length;
  for (let k = 0; k < sigma.length; k++) {
    acc += sigma[k]! ** 2;
    if (acc >= 0.9 * total) {
      rank90 = k + 1;
      break;
    }
  }
  return { rank90, stableRank: sigma[0]! > 0 ? total / sigma[0]! ** 2 : null };
}

export async function compareCheckpoints(
  a: Checkpoint,
  b: Checkpoint,
  o: CompareOptions = {},
): Promise<CheckpointComparison> {
  const tolerance = o.tolerance ?? DEFAULT_CHANGE_TOLERANCE;
  const wanted = o.layers && o.layers.length ? new Set(o.layers) : null;
  const { pairs, onlyInA, onlyInB } = pairLayers(
    a.linearLayers.filter((l) => !wanted || wanted.has(l.name)),
    b.linearLayers,
  );
  const oneGguf = (a.format === 'gguf') !== (b.format === 'gguf');
  const layers: LayerDifference[] = [];
  const shapeMismatch: CheckpointComparison['shapeMismatch'] = [];
  let done = 0;
  for (const [la, lb] of pairs) {
    throwIfCancelled(o.signal);
    if (la.shape[0] !== lb.shape[0] || la.shape[1] !== lb.shape[1]) {
      shapeMismatch.push({ a: la.name, b: lb.name, shapeA: la.shape, shapeB: lb.shape });
      o.onLayer?.(++done, pairs.length, la.name);
      continue;
    }
    const [out, nIn] = la.shape;
    const wa = (await a.readWeight(la.name, o.signal)).data;
    let wb = (await b.readWeight(lb.name, o.signal)).data;
    let diff = difference(wa, wb);
    let ropeUnpermuted = false;
    if (oneGguf && (la.role === 'q_proj' || la.role === 'k_proj')) {
      const gguf = a.format === 'gguf' ? a : b;
      const heads = ggufHeads(gguf, la.role);
      // Undo the permutation on whichever side is the GGUF file, and keep it if it fits better.
      const fixed = heads
        ? a.format === 'gguf'
          ? unpermuteRope(wa, out, nIn, heads)
          : unpermuteRope(wb, out, nIn, heads)
        : null;
      if (fixed) {
        const alt = a.format === 'gguf' ? difference(fixed, wb) : difference(wa, fixed);
        if (alt.norm < diff.norm) {
          diff = alt;
          if (b.format === 'gguf') wb = fixed;
          ropeUnpermuted = true;
        }
      }
    }
    const normA = norm(wa);
    const relative = normA > 0 ? diff.norm / normA : diff.norm > 0 ? Infinity : 0;
    // Weights with NaN or infinities: the difference of the finite entries is measured and the
    // rest counted; a spectrum of a matrix with holes would mean nothing, so there is none.
    const sigma =
      o.spectra === false || diff.norm === 0 || diff.nonFinite > 0
        ? new Float64Array(o.spectra === false || diff.nonFinite > 0 ? 0 : Math.min(out, nIn))
        : await singularValues(mat(diff.d, out, nIn), { signal: o.signal });
    const identical = diff.norm === 0 && !diff.nonFiniteDiffers;
    layers.push({
      name: la.name,
      nameB: lb.name,
      shape: [out, nIn],
      normA,
      normB: norm(wb),
      diffNorm: diff.norm,
      relative,
      maxAbs: diff.maxAbs,
      verdict: identical ? 'identical' : relative <= tolerance && !diff.nonFiniteDiffers ? 'unchanged' : 'changed',
      sigma,
      ...(diff.nonFinite > 0
        ? {
            rank90: null,
            stableRank: null,
            nonFinite: { a: nonFiniteCount(wa), b: nonFiniteCount(wb), differ: diff.nonFiniteDiffers },
          }
        : spectrumSummary(sigma, diff.norm)),
      ...(ropeUnpermuted ? { ropeUnpermuted } : {}),
    });
    o.onLayer?.(++done, pairs.length, la.name);
  }
  return {
    a: a.path,
    b: b.path,
    tolerance,
    layers,
    onlyInA: onlyInA.map((l) => l.name),
    // With a layer filter, B's other layers are simply not asked about.
    onlyInB: wanted ? [] : onlyInB.map((l) => l.name),
    shapeMismatch,
  };
}
