/**
 * Exact error curves over the rank k = 0…R of a low-rank correction whose factors are quantized.
 *
 * Everything works in the code's transposed convention: E' = Eᵀ = (W − W_q)ᵀ is [in, out], the
 * correction at rank k is C_k = Ã_k·B̃_k with Ã_k [in, k] and B̃_k [k, out] quantized, and the
 * reconstructed weight is Ŵ = W_q + C_kᵀ. For a metric weight Q (identity, a diagonal, or a
 * dense activation Gram R, all [in, in]) the error is
 *
 *   ‖E' − C_k‖²_Q = ‖E'‖²_Q − 2·Σ_j ãⱼᵀ·Q·E'·b̃ⱼ + Σ_{j,l} (ãⱼᵀQãₗ)(b̃ⱼᵀb̃ₗ),
 *
 * so a handful of GEMMs (Q·E'·B̃ᵀ, Ãᵀ·Q·Ã, B̃·B̃ᵀ) gives the error for every k at once, with an
 * O(R²) prefix sum. One subtlety makes it exact rather than approximate: when a factor's
 * quantization tiles run along the rank dimension (the paper's [1,16] blocks on A), the last,
 * partial tile of Ã_k is quantized on its own (zero-padded, its shared exponent taken over only
 * the columns present), so its columns differ from those of Ã_R. Those "partial-tile variants"
 * are quantized separately for every k and enter through extra GEMMs against the full factors.
 */
import { kernels, mat, type Mat } from '../linalg/kernels';
import { throwIfCancelled } from '../errors';

/** Fake-quantizes a row-major rows×cols matrix (one of the low-rank factors). */
export type FactorQuantizer = (data: Float32Array, rows: number, cols: number) => Float32Array;

export interface FactorQuantization {
  quantize: FactorQuantizer;
  /** Tile extent along the rank dimension (1 = tiles never straddle ranks, so no variants). */
  rankTile: number;
}

/** A metric weight over the input dimension. */
export type MetricWeight =
  { kind: 'identity' } | { kind: 'diagonal'; d: Float64Array } | { kind: 'dense'; R: Mat<Float64Array> };

export interface CurveInputs {
  /** E' = (W − W_q)ᵀ, [in, out]. */
  errorT: Mat<Float64Array>;
  /** Unquantized factors A [in, R] and B [R, out]. */
  A: Mat<Float64Array>;
  B: Mat<Float64Array>;
  /** How A and B are quantized; omit for unquantized factors. */
  aQuant?: FactorQuantization;
  bQuant?: FactorQuantization;
  signal?: AbortSignal;
}

export interface RankCurve {
  /** ‖E'‖²_Q: the error without any correction (rank 0). */
  base: number;
  /** errSq[k] = ‖E' − C_k‖²_Q for k = 0…R. */
  errSq: Float64Array;
}

/** Column block [c0, c1) of a row-major matrix, as float32 (the factor quantizers work in float32). */
function columnsF32(m: Mat<Float64Array>, c0: number, c1: number): Float32Array {
  const w = c1 - c0;
  const out = new Float32Array(m.rows * w);
  for (let i = 0; i < m.rows; i++) {
    const src = i * m.cols + c0;
    for (let j = 0; j < w; j++) out[i * w + j] = m.data[src + j]!;
  }
  return out;
}

function rowsF32(m: Mat<Float64Array>, r0: number, r1: number): Float32Array {
  return Float32Array.from(m.data.subarray(r0 * m.cols, r1 * m.cols));
}

function toF64(a: Float32Array): Float64Array {
  return Float64Array.from(a);
}

/** Quantized factors at full rank, and for every rank k inside a partial tile, the partial tile's variant. */
interface QuantizedFactors {
  A: Mat<Float64Array>;
  B: Mat<Float64Array>;
  /** Variant columns of A for rank k (in × w), stacked: column offset per k in aOffset. */
  aVariants: Mat<Float64Array> | null;
  bVariants: Mat<Float64Array> | null; // variant rows of B, stacked (Σw × out)
  /** For each k, the start of its partial tile (prefix of full-quantized columns). */
  prefix: Int32Array;
  /** For each k, where its variant columns/rows start in the stacked variant matrices (−1: none). */
  variantOffset: Int32Array;
}

function quantizeFactors(inp: CurveInputs): QuantizedFactors {
  const { A, B, aQuant, bQuant } = inp;
  const R = A.cols;
  const tA = aQuant?.rankTile ?? 1;
  const tB = bQuant?.rankTile ?? 1;
  if (tA > 1 && tB > 1 && tA !== tB) {
    throw new Error(`factor tiles along the rank differ (${tA} vs ${tB}); exact curves need them equal`);
  }
  const t = Math.max(tA, tB);
  const Aq = aQuant ? mat(toF64(aQuant.quantize(columnsF32(A, 0, R), A.rows, R)), A.rows, R) : A;
  const Bq = bQuant ? mat(toF64(bQuant.quantize(rowsF32(B, 0, R), R, B.cols)), R, B.cols) : B;
  const prefix = new Int32Array(R + 1);
  const variantOffset = new Int32Array(R + 1).fill(-1);
  let total = 0;
  for (let k = 0; k <= R; k++) {
    const m = t > 1 ? Math.floor(k / t) * t : k;
    prefix[k] = m;
    if (k > m) {
      variantOffset[k] = total;
      total += k - m;
    }
  }
  if (total === 0) return { A: Aq, B: Bq, aVariants: null, bVariants: null, prefix, variantOffset };

  // Variant columns of A: only A's tiles straddle ranks if tA > 1; otherwise the full columns are reused.
  const aV = new Float64Array(A.rows * total);
  const bV = new Float64Array(total * B.cols);
  for (let k = 1; k <= R; k++) {
    const off = variantOffset[k]!;
    if (off < 0) continue;
    const m = prefix[k]!;
    const w = k - m;
    const aCols = tA > 1 ? aQuant!.quantize(columnsF32(A, m, k), A.rows, w) : columnsF32(Aq, m, k);
    for (let i = 0; i < A.rows; i++) {
      for (let j = 0; j < w; j++) aV[i * total + off + j] = aCols[i * w + j]!;
    }
    const bRows = tB > 1 ? bQuant!.quantize(rowsF32(B, m, k), w, B.cols) : rowsF32(Bq, m, k);
    for (let j = 0; j < w * B.cols; j++) bV[off * B.cols + j] = bRows[j]!;
  }
  return {
    A: Aq,
    B: Bq,
    aVariants: mat(aV, A.rows, total),
    bVariants: mat(bV, total, B.cols),
    prefix,
    variantOffset,
  };
}

/** Q·X for X [in, n] under a metric weight. */
async function applyWeight(q: MetricWeight, x: Mat<Float64Array>): Promise<Mat<Float64Array>> {
  if (q.kind === 'identity') return x;
  if (q.kind === 'dense') return kernels().matmul(q.R, x);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < x.rows; i++) {
    const s = q.d[i]!;
    const row = i * x.cols;
    for (let j = 0; j < x.cols; j++) out[row + j] = s * x.data[row + j]!;
  }
  return mat(out, x.rows, x.cols);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Column j of X·Yᵀ-style products: Σ_i a[i, ja]·b[i, jb] for row-major a [n×ca], b [n×cb]. */
function columnDot(a: Mat<Float64Array>, ja: number, b: Mat<Float64Array>, jb: number): number {
  let s = 0;
  for (let i = 0; i < a.rows; i++) s += a.data[i * a.cols + ja]! * b.data[i * b.cols + jb]!;
  return s;
}

/**
 * Error curves for several metric weights from one set of factors. The factors are quantized once
 * (with all partial-tile variants) and shared across the weights.
 */
export async function rankCurves(inp: CurveInputs, weights: MetricWeight[]): Promise<RankCurve[]> {
  const K = kernels();
  const E = inp.errorT;
  const q = quantizeFactors(inp);
  const R = q.A.cols;
  throwIfCancelled(inp.signal);

  // Gram of B and the cross terms of B variants are independent of the metric weight.
  const GB = await K.matmul(q.B, q.B, { transB: true }); // R×R
  const GBv = q.bVariants ? await K.matmul(q.bVariants, q.B, { transB: true }) : null; // V×R
  const curves: RankCurve[] = [];
  for (const weight of weights) {
    throwIfCancelled(inp.signal);
    const PE = await applyWeight(weight, E); // Q·E' [in, out]
    const base = dot(E.data, PE.data);
    const Y = await K.matmul(PE, q.B, { transB: true }); // Q·E'·B̃ᵀ [in, R]
    const QA = await applyWeight(weight, q.A); // [in, R]
    const GA = await K.matmul(q.A, QA, { transA: true }); // R×R
    let GAv: Mat<Float64Array> | null = null;
    let QAv: Mat<Float64Array> | null = null;
    let Yv: Mat<Float64Array> | null = null;
    if (q.aVariants && q.bVariants) {
      GAv = await K.matmul(q.aVariants, QA, { transA: true }); // V×R: variantᵀ·Q·Ã
      QAv = await applyWeight(weight, q.aVariants); // [in, V]
      Yv = await K.matmul(PE, q.bVariants, { transB: true }); // [in, V]
    }
    throwIfCancelled(inp.signal);

    // F[m] = −2 Σ_{j<m} z_j + Σ_{j,l<m} GA_jl·GB_jl with full-quantized columns only.
    const F = new Float64Array(R + 1);
    for (let m = 0; m < R; m++) {
      const z = columnDot(q.A, m, Y, m);
      let cross = 0;
      for (let l = 0; l < m; l++) cross += GA.data[m * R + l]! * GB.data[m * R + l]!;
      F[m + 1] = F[m]! - 2 * z + GA.data[m * R + m]! * GB.data[m * R + m]! + 2 * cross;
    }
    const errSq = new Float64Array(R + 1);
    for (let k = 0; k <= R; k++) {
      const m = q.prefix[k]!;
      const off = q.variantOffset[k]!;
      let e = base + F[m]!;
      if (off >= 0) {
        const w = k - m;
        for (let j = 0; j < w; j++) {
          const vj = off + j;
          e -= 2 * columnDot(q.aVariants!, vj, Yv!, vj);
          let cross = 0;
          for (let l = 0; l < m; l++) cross += GAv!.data[vj * R + l]! * GBv!.data[vj * R + l]!;
          e += 2 * cross;
          for (let i = 0; i < w; i++) {
            const vi = off + i;
            const ga = columnDot(q.aVariants!, vj, QAv!, vi);
            let gb = 0;
            const bj = vj * q.bVariants!.cols;
            const bi = vi * q.bVariants!.cols;
            for (let c = 0; c < q.bVariants!.cols; c++) gb += q.bVariants!.data[bj + c]! * q.bVariants!.data[bi + c]!;
            e += ga * gb;
          }
        }
      }
      errSq[k] = Math.max(0, e);
    }
    curves.push({ base, errSq });
  }
  return curves;
}
