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
 * so a handful of GEMMs (B̃·E, Ãᵀ·Q·Ã, B̃·B̃ᵀ) gives the error for every k at once, with an
 * O(R²) prefix sum. The one product with the big matrix, B̃·E = (E'·B̃ᵀ)ᵀ, reads E in its stored
 * [out, in] layout (no transposed or widened copy: fresh memory costs more than the product, see
 * linalg/workspace.ts); the metric weight is applied to its small result.
 *
 * The product with E is the one step that costs: in float64 (E widened block by block) it took
 * 0.3–0.6 s for a 14336×4096 layer at R = 64, in float32 35–90 ms. So a float32 E is first
 * multiplied in float32 (blocks of rows of E, each block's result added up in float64), and the
 * curves are kept only where an error bound shows every value within CURVE_TOLERANCE of the exact
 * one (see curvesFrom); otherwise T is formed again in float64 (docs/algorithms.md §8.2).
 *
 * One subtlety makes it exact rather than approximate: when a factor's quantization tiles run
 * along the rank dimension (the paper's [1,16] blocks on A), the last, partial tile of Ã_k is
 * quantized on its own (zero-padded, its shared exponent taken over only the columns present), so
 * its columns differ from those of Ã_R. Those "partial-tile variants" are quantized separately for
 * every k and enter through extra GEMMs against the full factors; the other factor's variants are
 * its own rows, so only the tiled factor's cost anything.
 */
import { kernels, mat, type FloatArray, type Mat } from '../linalg/kernels';
import { buildModel, OnnxType, type OnnxTypeCode } from '../onnx/builder';
import { throwIfCancelled } from '../errors';
import { U32 } from '../linalg/deflated-spectrum';

/** Fake-quantizes a row-major rows×cols matrix (one of the low-rank factors). */
export type FactorQuantizer = (data: Float32Array, rows: number, cols: number) => Float32Array;

export interface FactorQuantization {
  quantize: FactorQuantizer;
  /**
   * Tile extent along the rank dimension (1 = tiles never straddle ranks, so no variants). Tiles
   * that run along the rank are one element wide across it: [1, t] on A, [t, 1] on B.
   */
  rankTile: number;
}

/** A metric weight over the input dimension. */
export type MetricWeight =
  { kind: 'identity' } | { kind: 'diagonal'; d: Float64Array } | { kind: 'dense'; R: Mat<Float64Array> };

export interface CurveInputs {
  /** E = W − W_q, [out, in], float32 or float64. */
  error: Mat<FloatArray>;
  /** Σ_o E[o, i]² per input channel i (length in), when the caller has it already. */
  columnSq?: Float64Array;
  /** Unquantized factors A [in, R] and B [R, out]. */
  A: Mat<Float64Array>;
  B: Mat<Float64Array>;
  /** How A and B are quantized; omit for unquantized factors. */
  aQuant?: FactorQuantization;
  bQuant?: FactorQuantization;
  /** 'float64' forbids the float32 product (a reference for tests); default: float32 where certified. */
  product?: 'auto' | 'float64';
  signal?: AbortSignal;
}

export interface RankCurve {
  /** ‖E'‖²_Q: the error without any correction (rank 0). */
  base: number;
  /** errSq[k] = ‖E' − C_k‖²_Q for k = 0…R. */
  errSq: Float64Array;
  /** Arithmetic of the product with E these values come from (float32 only where certified). */
  product: 'float32' | 'float64';
}

/** Transpose of a row-major rows×cols float32 block, widened: [cols, rows]. */
function transposedF64(a: Float32Array | Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

/**
 * The quantized factors, both with their rank index first: Ãᵀ [R, in] and B̃ [R, out], and the
 * partial-tile variants of whichever factor has tiles along the rank ([V, in] for A, [V, out] for
 * B). The other factor's "variant" rows are its own rows (prefix + j), so no copy is made of them.
 */
interface QuantizedFactors {
  At: Mat<Float64Array>;
  B: Mat<Float64Array>;
  aVariantsT: Mat<Float64Array> | null;
  bVariants: Mat<Float64Array> | null;
  /** For each k, the start of its partial tile (prefix of full-quantized columns). */
  prefix: Int32Array;
  /** For each k, where its variant rows start in the stacked variants (−1: none). */
  variantOffset: Int32Array;
  /** Rank index each variant row stands for. */
  variantSource: Int32Array;
}

interface VariantLayout {
  prefix: Int32Array;
  variantOffset: Int32Array;
  total: number;
}

/** For each width w of a partial tile, the ranks m = 0, t, 2t, … whose tile has a variant of that width. */
function tileStarts(R: number, t: number, w: number): number[] {
  const starts: number[] = [];
  for (let m = 0; m + w <= R; m += t) starts.push(m);
  return starts;
}

/**
 * A's variants (A [in, R], tiles [1, t] along the rank) as rows [total, in]: for every k that is
 * not a multiple of t, columns m…k−1 (m = prefix[k]) quantized on their own, column m + j in row
 * variantOffset[k] + j. The variants of one width are quantized in one call, stacked as rows: a
 * [1, t] tile never spans two rows, so every row of every variant stays its own partial tile.
 */
function aVariantRows(A: Mat<Float64Array>, quantize: FactorQuantizer, t: number, v: VariantLayout): Float64Array {
  const n = A.rows;
  const R = A.cols;
  const out = new Float64Array(v.total * n);
  for (let w = 1; w < t; w++) {
    const starts = tileStarts(R, t, w);
    if (starts.length === 0) break;
    const stacked = new Float32Array(starts.length * n * w);
    starts.forEach((m, g) => {
      for (let i = 0; i < n; i++) {
        const src = i * R + m;
        const dst = (g * n + i) * w;
        for (let j = 0; j < w; j++) stacked[dst + j] = A.data[src + j]!;
      }
    });
    const q = quantize(stacked, starts.length * n, w);
    starts.forEach((m, g) => {
      const off = v.variantOffset[m + w]!;
      for (let j = 0; j < w; j++) {
        const row = (off + j) * n;
        for (let i = 0; i < n; i++) out[row + i] = q[(g * n + i) * w + j]!;
      }
    });
  }
  return out;
}

/**
 * B's variants (B [R, out], tiles [t, 1] along the rank) as rows [total, out], laid out as
 * aVariantRows's. The variants of one width are quantized in one call, side by side: a [t, 1]
 * tile never spans two columns.
 */
function bVariantRows(B: Mat<Float64Array>, quantize: FactorQuantizer, t: number, v: VariantLayout): Float64Array {
  const n = B.cols;
  const out = new Float64Array(v.total * n);
  for (let w = 1; w < t; w++) {
    const starts = tileStarts(B.rows, t, w);
    if (starts.length === 0) break;
    const width = starts.length * n;
    const stacked = new Float32Array(w * width);
    starts.forEach((m, g) => {
      for (let j = 0; j < w; j++) {
        const src = (m + j) * n;
        const dst = j * width + g * n;
        for (let o = 0; o < n; o++) stacked[dst + o] = B.data[src + o]!;
      }
    });
    const q = quantize(stacked, w, width);
    starts.forEach((m, g) => {
      const off = v.variantOffset[m + w]!;
      for (let j = 0; j < w; j++) {
        const dst = (off + j) * n;
        const src = j * width + g * n;
        for (let o = 0; o < n; o++) out[dst + o] = q[src + o]!;
      }
    });
  }
  return out;
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
  const Aq = aQuant ? aQuant.quantize(Float32Array.from(A.data), A.rows, R) : A.data;
  const At = mat(transposedF64(Aq, A.rows, R), R, A.rows);
  const Bq = bQuant ? mat(Float64Array.from(bQuant.quantize(Float32Array.from(B.data), R, B.cols)), R, B.cols) : B;
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
  const variantSource = new Int32Array(total);
  for (let k = 1; k <= R; k++) {
    const off = variantOffset[k]!;
    for (let j = 0; off >= 0 && j < k - prefix[k]!; j++) variantSource[off + j] = prefix[k]! + j;
  }
  const layout = { prefix, variantOffset, total };
  const aVariantsT = total > 0 && tA > 1 ? mat(aVariantRows(A, aQuant!.quantize, tA, layout), total, A.rows) : null;
  const bVariants = total > 0 && tB > 1 ? mat(bVariantRows(B, bQuant!.quantize, tB, layout), total, B.cols) : null;
  return { At, B: Bq, aVariantsT, bVariants, prefix, variantOffset, variantSource };
}

/** Y = X[:, o0:o1]·E_blk; in float64 with E_blk (float32) widened inside onnxruntime. */
function leftProductGraph(precision: 'float32' | 'float64'): Uint8Array {
  const elem = precision === 'float32' ? OnnxType.FLOAT : OnnxType.DOUBLE;
  const i64 = (name: string) => ({ name, elemType: OnnxType.INT64, dims: [1] });
  const widen = precision === 'float64';
  return buildModel({
    name: `left_product_${precision}`,
    inputs: [
      { name: 'X', elemType: elem, dims: ['p', 'o'] },
      { name: 'E', elemType: OnnxType.FLOAT, dims: ['r', 'i'] },
      i64('o0'),
      i64('o1'),
    ],
    initializers: [
      { name: 'ax1', elemType: OnnxType.INT64, dims: [1], raw: new Uint8Array(BigInt64Array.of(1n).buffer) },
    ],
    nodes: [
      { op: 'Slice', inputs: ['X', 'o0', 'o1', 'ax1'], outputs: ['Xb'] },
      ...(widen
        ? [{ op: 'Cast', inputs: ['E'], outputs: ['Ed'], attributes: { to: { kind: 'int' as const, value: elem } } }]
        : []),
      { op: 'MatMul', inputs: ['Xb', widen ? 'Ed' : 'E'], outputs: ['Y'] },
    ],
    outputs: [{ name: 'Y', elemType: elem, dims: ['p', 'i'] }],
  });
}

/**
 * Elements of E per call: in float64 this keeps onnxruntime's widened copy near 8 MB; in float32
 * it bounds the length of the float32 sums (1024 rows of a 4096-wide E) before they are added up
 * in float64.
 */
const LEFT_BLOCK_ELEMENTS: Record<'float32' | 'float64', number> = { float32: 1 << 22, float64: 1 << 20 };

/**
 * X·E for a thin X [p, out] (float64) and E [out, in], accumulated in float64 over blocks of rows
 * of E. 'float64' widens a float32 E block by block inside onnxruntime; 'float32' rounds X to
 * float32 and multiplies each block in float32 (an error curvesFrom's bound accounts for).
 */
export async function leftProduct(
  x: Mat<Float64Array>,
  e: Mat<FloatArray>,
  signal?: AbortSignal,
  precision: 'float32' | 'float64' = 'float64',
): Promise<Mat<Float64Array>> {
  if (e.data instanceof Float64Array) return kernels().matmul(x, e as Mat<Float64Array>);
  const acc = new Float64Array(x.rows * e.cols);
  if (x.rows === 0) return mat(acc, 0, e.cols);
  const f32 = precision === 'float32';
  const xData = f32 ? Float32Array.from(x.data) : x.data;
  // float32 blocks are written into one buffer: each call's output would be fresh memory.
  const into = f32 ? new Float32Array(x.rows * e.cols) : undefined;
  const block = Math.max(1, Math.floor(LEFT_BLOCK_ELEMENTS[precision] / Math.max(1, e.cols)));
  for (let o0 = 0; o0 < e.rows; o0 += block) {
    throwIfCancelled(signal);
    const o1 = Math.min(e.rows, o0 + block);
    const out = await kernels().run(
      `curves:left-product:${precision}`,
      () => leftProductGraph(precision),
      {
        X: { data: xData, dims: [x.rows, x.cols] },
        E: { data: e.data.subarray(o0 * e.cols, o1 * e.cols), dims: [o1 - o0, e.cols] },
        o0: { data: BigInt64Array.of(BigInt(o0)), dims: [1] },
        o1: { data: BigInt64Array.of(BigInt(o1)), dims: [1] },
      },
      into ? { Y: { data: into, dims: [x.rows, e.cols] } } : undefined,
    );
    const y = out.Y!.data as FloatArray;
    if (o0 === 0) acc.set(y);
    else for (let i = 0; i < acc.length; i++) acc[i]! += y[i]!;
  }
  return mat(acc, x.rows, e.cols);
}

const DENSE_QUADRATIC_KEY = 'curves:dense-quadratic';
/** Σ (X·R) ∘ X for a block of rows X (any float type, widened) and a symmetric R in float64. */
function denseQuadraticGraph(elem: OnnxTypeCode): Uint8Array {
  const D = OnnxType.DOUBLE;
  return buildModel({
    name: 'dense_quadratic',
    inputs: [
      { name: 'X', elemType: elem, dims: ['r', 'n'] },
      { name: 'R', elemType: D, dims: ['n', 'n'] },
    ],
    nodes: [
      { op: 'Cast', inputs: ['X'], outputs: ['Xd'], attributes: { to: { kind: 'int', value: D } } },
      { op: 'MatMul', inputs: ['Xd', 'R'], outputs: ['XR'] },
      { op: 'Mul', inputs: ['XR', 'Xd'], outputs: ['P'] },
      { op: 'ReduceSum', inputs: ['P'], outputs: ['S'], attributes: { keepdims: { kind: 'int', value: 0 } } },
    ],
    outputs: [{ name: 'S', elemType: D, dims: [] }],
  });
}

/**
 * tr(X·R·Xᵀ) = Σ_rows xᵀRx for X [rows, n] in its stored layout (‖X'‖²_R in the transposed
 * convention), by blocks of rows so that onnxruntime's widened copy stays small.
 */
export async function denseQuadratic(x: Mat<FloatArray>, r: Mat<Float64Array>, signal?: AbortSignal): Promise<number> {
  const f32 = x.data instanceof Float32Array;
  const key = `${DENSE_QUADRATIC_KEY}:${f32 ? 'f32' : 'f64'}`;
  const block = Math.max(1, Math.floor((1 << 21) / Math.max(1, x.cols)));
  let total = 0;
  for (let r0 = 0; r0 < x.rows; r0 += block) {
    throwIfCancelled(signal);
    const r1 = Math.min(x.rows, r0 + block);
    const out = await kernels().run(key, () => denseQuadraticGraph(f32 ? OnnxType.FLOAT : OnnxType.DOUBLE), {
      X: { data: x.data.subarray(r0 * x.cols, r1 * x.cols), dims: [r1 - r0, x.cols] },
      R: { data: r.data, dims: [r.rows, r.cols] },
    });
    total += (out.S!.data as Float64Array)[0]!;
  }
  return total;
}

/** Σ_o E[o, i]² per input column i, in float64. */
export function columnSquares(e: Mat<FloatArray>): Float64Array {
  const { rows, cols, data } = e;
  const out = new Float64Array(cols);
  for (let o = 0; o < rows; o++) {
    const row = o * cols;
    for (let i = 0; i < cols; i++) {
      const x = data[row + i]!;
      out[i]! += x * x;
    }
  }
  return out;
}

/** Q applied along the input dimension of rows-first data X [p, in]: X·Q (Q is symmetric). */
async function weightRows(q: MetricWeight, x: Mat<Float64Array>): Promise<Mat<Float64Array>> {
  if (q.kind === 'identity') return x;
  if (q.kind === 'dense') return kernels().matmul(x, q.R);
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.rows; r++) {
    const row = r * x.cols;
    for (let i = 0; i < x.cols; i++) out[row + i] = x.data[row + i]! * q.d[i]!;
  }
  return mat(out, x.rows, x.cols);
}

/** Each tile of ranks with variants: its rank m and its variants' rows [start, end) of the stacked variants. */
function variantTiles(
  q: Pick<QuantizedFactors, 'prefix' | 'variantOffset'>,
): Map<number, { start: number; end: number }> {
  const tiles = new Map<number, { start: number; end: number }>();
  for (let k = 1; k < q.prefix.length; k++) {
    const off = q.variantOffset[k]!;
    if (off < 0) continue;
    const m = q.prefix[k]!;
    const end = off + k - m;
    const t = tiles.get(m);
    if (t) t.end = Math.max(t.end, end);
    else tiles.set(m, { start: off, end });
  }
  return tiles;
}

/** Rows [start, start + size) of a row-major matrix, as a view. */
function rowBlock(a: Mat<Float64Array>, start: number, size: number): Mat<Float64Array> {
  return mat(a.data.subarray(start * a.cols, (start + size) * a.cols), size, a.cols);
}

/**
 * The products a partial tile's variants need among themselves (variant j of rank k against
 * variant i of the same k, for the tiled factor): every variant of one tile of ranks (the ranks
 * m+1…m+t−1 above a multiple m of the tile) in one GEMM, X_g·Y_gᵀ over the tile's rows, instead of
 * Σw² dot products in JS. A tile holds t(t−1)/2 variants (120 for t = 16), so the GEMMs cost
 * (R/t)·120²·n multiply-adds: a few milliseconds even at R = 512.
 */
class VariantGrams {
  private constructor(
    private readonly q: Pick<QuantizedFactors, 'prefix' | 'variantOffset'>,
    private readonly grams: Map<number, { start: number; size: number; g: Float64Array }>,
  ) {}

  static async of(
    q: Pick<QuantizedFactors, 'prefix' | 'variantOffset'>,
    x: Mat<Float64Array>,
    y: Mat<Float64Array>,
  ): Promise<VariantGrams> {
    const grams = new Map<number, { start: number; size: number; g: Float64Array }>();
    for (const [m, { start, end }] of variantTiles(q)) {
      const size = end - start;
      const g = await kernels().matmul(rowBlock(x, start, size), rowBlock(y, start, size), { transB: true });
      grams.set(m, { start, size, g: g.data });
    }
    return new VariantGrams(q, grams);
  }

  static fromGrams(
    q: Pick<QuantizedFactors, 'prefix' | 'variantOffset'>,
    grams: Map<number, { start: number; size: number; g: Float64Array }>,
  ): VariantGrams {
    return new VariantGrams(q, grams);
  }

  /** x[vj]·y[vi] for two variants of rank k. */
  get(k: number, vj: number, vi: number): number {
    const t = this.grams.get(this.q.prefix[k]!)!;
    return t.g[(vj - t.start) * t.size + (vi - t.start)]!;
  }
}

/** What A's partial-tile variants contribute to the curves of one metric weight. */
interface AVariantTerms {
  /** ãᵥᵀ·Q·ãᵤ among the variants of one tile of ranks. */
  grams: VariantGrams;
  /** cross[v] = Σ_{l<m} (ãᵥᵀQãₗ)(b̃ⱼᵀb̃ₗ) for variant v of a rank above m, j its row of B̃ (or of B̃'s variants). */
  cross: Float64Array;
  /** Σᵢ |(Q·ãᵥ)ᵢ|·‖E[:, i]‖ per variant, for the float32 product's bound (null when not asked). */
  bound: Float64Array | null;
}

/**
 * A's variant terms, one tile of ranks at a time, with Q·ãᵥ formed for one tile's variants only.
 * The cross terms come as (Q·ãᵥ)·uⱼ with uⱼ = Σ_{l<m} ãₗ·(b̃ⱼᵀb̃ₗ), one product per tile for its
 * few distinct j, instead of the V×R matrix of all ãᵥᵀQãₗ: V ≈ R(t−1)/2 variant rows make that
 * product ~7.5·R²·in multiply-adds per weight (22 GFLOP at R = 512 on a 5632-wide layer), this
 * one about R²·in/2.
 */
async function aVariantTerms(
  q: QuantizedFactors,
  weight: MetricWeight,
  GBvar: Mat<Float64Array>,
  bRow: (v: number) => number,
  columnNorms: Float64Array | null,
): Promise<AVariantTerms> {
  const aV = q.aVariantsT!;
  const R = q.At.rows;
  const nIn = q.At.cols;
  const cross = new Float64Array(aV.rows);
  const bound = columnNorms ? new Float64Array(aV.rows) : null;
  const grams = new Map<number, { start: number; size: number; g: Float64Array }>();
  for (const [m, { start, end }] of variantTiles(q)) {
    const size = end - start;
    const x = rowBlock(aV, start, size);
    const qx = await weightRows(weight, x);
    grams.set(m, { start, size, g: (await kernels().matmul(x, qx, { transB: true })).data });
    if (bound) {
      const rows = weightedAbsRows(qx, columnNorms!);
      bound.set(rows, start);
    }
    if (m === 0) continue;
    // The rows j of B̃'s Gram (or of its variants' products with B̃) this tile's variants use.
    const index = new Map<number, number>();
    for (let v = start; v < end; v++) if (!index.has(bRow(v))) index.set(bRow(v), index.size);
    const sel = new Float64Array(index.size * m);
    for (const [j, r] of index) sel.set(GBvar.data.subarray(j * R, j * R + m), r * m);
    const u = await kernels().matmul(mat(sel, index.size, m), mat(q.At.data.subarray(0, m * nIn), m, nIn));
    for (let v = start; v < end; v++) cross[v] = rowDot(qx, v - start, u, index.get(bRow(v))!);
  }
  return { grams: VariantGrams.fromGrams(q, grams), cross, bound };
}

function rowDot(a: Mat<Float64Array>, i: number, b: Mat<Float64Array>, j: number): number {
  const n = a.cols;
  const ai = i * n;
  const bj = j * n;
  let s = 0;
  for (let c = 0; c < n; c++) s += a.data[ai + c]! * b.data[bj + c]!;
  return s;
}

/**
 * Bar on the relative error of every float32 curve value (by curvesFrom's bound): the one the spectra
 * hold their top values to. A curve whose bound exceeds it anywhere is computed in float64.
 */
export const CURVE_TOLERANCE = 1e-4;
/**
 * The float32 product's error model: each entry of T = B̃·E errs by at most κ·u·‖b̃ⱼ‖·‖E[:, i]‖
 * (u = 2⁻²⁴; X's rounding to float32 included). Measured over 14336×4096, 4096² and 256×2048
 * MXINT4 errors against random and SVD factors: at most 0.3 on large blocks and 1.7 on a 256-row
 * E. Taken at 16, as the spectra's float32 model is (linalg/deflated-spectrum.ts).
 */
const PRODUCT_KAPPA = 16;
/** Multiply-adds of T below which the float64 product is cheap enough to take at once. */
const FLOAT32_MIN_WORK = 1 << 27;

/**
 * Error curves for several metric weights from one set of factors. The factors are quantized once
 * (with all partial-tile variants) and shared across the weights.
 */
export async function rankCurves(inp: CurveInputs, weights: MetricWeight[]): Promise<RankCurve[]> {
  const q = quantizeFactors(inp);
  throwIfCancelled(inp.signal);
  const bProducts = await factorProducts(q);
  const E = inp.error;
  const tRows = q.B.rows + (q.bVariants?.rows ?? 0);
  if (inp.product !== 'float64' && E.data instanceof Float32Array && tRows * E.rows * E.cols >= FLOAT32_MIN_WORK) {
    const fast = await curvesFrom(q, bProducts, inp, weights, 'float32');
    if (fast) return fast;
  }
  return (await curvesFrom(q, bProducts, inp, weights, 'float64'))!;
}

/** The products among B̃'s rows and its variants: the same whichever arithmetic forms B̃·E. */
interface FactorProducts {
  /** B̃·B̃ᵀ, R×R. */
  GB: Mat<Float64Array>;
  /** B̃'s variants times B̃ᵀ, V×R (null without variants). */
  GBv: Mat<Float64Array> | null;
  bGrams: VariantGrams | null;
}

async function factorProducts(q: QuantizedFactors): Promise<FactorProducts> {
  const K = kernels();
  return {
    GB: await K.matmul(q.B, q.B, { transB: true }),
    GBv: q.bVariants ? await K.matmul(q.bVariants, q.B, { transB: true }) : null,
    bGrams: q.bVariants ? await VariantGrams.of(q, q.bVariants, q.bVariants) : null,
  };
}

/** ‖row r‖₂ of a row-major matrix, for every row. */
function rowNorms(m: Mat<Float64Array>): Float64Array {
  const out = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) out[r] = Math.sqrt(rowDot(m, r, m, r));
  return out;
}

/** Σᵢ |x[r, i]|·c[i] for every row r of a row-major X. */
function weightedAbsRows(x: Mat<Float64Array>, c: Float64Array): Float64Array {
  const out = new Float64Array(x.rows);
  for (let r = 0; r < x.rows; r++) {
    const row = r * x.cols;
    let s = 0;
    for (let i = 0; i < x.cols; i++) s += Math.abs(x.data[row + i]!) * c[i]!;
    out[r] = s;
  }
  return out;
}

/**
 * The curves from T = B̃·E formed in the given arithmetic; null when float32 curves cannot be
 * shown to meet CURVE_TOLERANCE. With the product's error model, the error of each term
 * ãⱼᵀ·Q·E'·b̃ⱼ is at most κ·u·‖b̃ⱼ‖·Σᵢ |(Q·ãⱼ)ᵢ|·‖E[:, i]‖, and a curve value's error at most twice
 * the sum of its terms' (the other terms involve only the factors, in float64).
 */
async function curvesFrom(
  q: QuantizedFactors,
  bProducts: FactorProducts,
  inp: CurveInputs,
  weights: MetricWeight[],
  precision: 'float32' | 'float64',
): Promise<RankCurve[] | null> {
  const K = kernels();
  const E = inp.error;
  const R = q.At.rows;
  let colSq = inp.columnSq;

  // T = B̃·E = (E'·B̃ᵀ)ᵀ, [R, in]; the metric weight acts on it from the right.
  const T = await leftProduct(q.B, E, inp.signal, precision);
  const Tv = q.bVariants ? await leftProduct(q.bVariants, E, inp.signal, precision) : null;
  throwIfCancelled(inp.signal);
  let bounds: { columnNorms: Float64Array; bNorm: Float64Array; bvNorm: Float64Array | null } | null = null;
  if (precision === 'float32') {
    colSq ??= columnSquares(E);
    bounds = {
      columnNorms: colSq.map((v) => Math.sqrt(v)),
      bNorm: rowNorms(q.B),
      bvNorm: q.bVariants ? rowNorms(q.bVariants) : null,
    };
  }
  const { GB, GBv, bGrams } = bProducts;
  // Row of each variant in the matrices that hold it: its own row when that factor has variants,
  // otherwise the row of the rank it stands for.
  const aRow = (v: number) => (q.aVariantsT ? v : q.variantSource[v]!);
  const bRow = (v: number) => (q.bVariants ? v : q.variantSource[v]!);
  const curves: RankCurve[] = [];
  // LQER's objective is the weight error itself: the identity comes twice, computed once.
  let identity: RankCurve | undefined;
  for (const weight of weights) {
    throwIfCancelled(inp.signal);
    if (weight.kind === 'identity' && identity) {
      curves.push({ ...identity, errSq: identity.errSq.slice() });
      continue;
    }
    let base: number;
    if (weight.kind === 'dense') base = await denseQuadratic(E, weight.R, inp.signal);
    else {
      colSq ??= columnSquares(E);
      base = 0;
      for (let i = 0; i < colSq.length; i++) base += weight.kind === 'diagonal' ? weight.d[i]! * colSq[i]! : colSq[i]!;
    }
    const Y = await weightRows(weight, T); // (Q·E'·B̃ᵀ)ᵀ [R, in]
    const QAt = await weightRows(weight, q.At); // (Q·Ã)ᵀ [R, in]
    const GA = await K.matmul(q.At, QAt, { transB: true }); // R×R
    const Av = q.aVariantsT ?? q.At;
    const Yv = Tv ? await weightRows(weight, Tv) : Y;
    const GBvar = GBv ?? GB;
    const aTerms = q.aVariantsT
      ? await aVariantTerms(q, weight, GBvar, bRow, bounds ? bounds.columnNorms : null)
      : null;
    // Error bounds of the float32 product's terms: full-quantized ranks, then variant rows.
    const termBound = bounds ? weightedAbsRows(QAt, bounds.columnNorms) : null;
    const variantBound = aTerms ? aTerms.bound : termBound;
    const boundF = new Float64Array(R + 1);
    if (bounds) {
      for (let m = 0; m < R; m++)
        boundF[m + 1] = boundF[m]! + 2 * PRODUCT_KAPPA * U32 * bounds.bNorm[m]! * termBound![m]!;
    }
    throwIfCancelled(inp.signal);

    // F[m] = −2 Σ_{j<m} z_j + Σ_{j,l<m} GA_jl·GB_jl with full-quantized columns only.
    const F = new Float64Array(R + 1);
    for (let m = 0; m < R; m++) {
      const z = rowDot(q.At, m, Y, m);
      let cross = 0;
      for (let l = 0; l < m; l++) cross += GA.data[m * R + l]! * GB.data[m * R + l]!;
      F[m + 1] = F[m]! - 2 * z + GA.data[m * R + m]! * GB.data[m * R + m]! + 2 * cross;
    }
    const errSq = new Float64Array(R + 1);
    for (let k = 0; k <= R; k++) {
      const m = q.prefix[k]!;
      const off = q.variantOffset[k]!;
      let e = base + F[m]!;
      let bound = boundF[m]!;
      if (off >= 0) {
        const w = k - m;
        for (let j = 0; j < w; j++) {
          const vj = off + j;
          const ja = aRow(vj);
          const jb = bRow(vj);
          e -= 2 * rowDot(Av, ja, Yv, jb);
          if (bounds) bound += 2 * PRODUCT_KAPPA * U32 * (bounds.bvNorm ?? bounds.bNorm)[jb]! * variantBound![ja]!;
          let cross = 0;
          if (aTerms) cross = aTerms.cross[vj]!;
          else for (let l = 0; l < m; l++) cross += GA.data[ja * R + l]! * GBvar.data[jb * R + l]!;
          e += 2 * cross;
          for (let i = 0; i < w; i++) {
            const vi = off + i;
            // A factor without variants has these products in its Gram already.
            const ga = aTerms ? aTerms.grams.get(k, vj, vi) : GA.data[ja * R + aRow(vi)]!;
            const gb = bGrams ? bGrams.get(k, vj, vi) : GB.data[jb * R + bRow(vi)]!;
            e += ga * gb;
          }
        }
      }
      // Uncertified float32 curves are recomputed in float64 (as is a value cancelled to zero).
      if (bounds && !(bound <= CURVE_TOLERANCE * e)) return null;
      errSq[k] = Math.max(0, e);
    }
    curves.push({ base, errSq, product: precision });
    if (weight.kind === 'identity') identity = curves[curves.length - 1];
  }
  return curves;
}
