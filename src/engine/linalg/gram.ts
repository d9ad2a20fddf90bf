/**
 * Gram matrices, in float64 (or float32 storage where asked). By default M is widened to float64 (exact) and multiplied
 * there. With `precision: 'float32'` a float32 M is multiplied as it is, three times faster
 * through onnxruntime; the product then carries rounding errors of order 1e-7 relative in each
 * entry, which moves eigenvalues by a few 1e-7·σ₁² at most: harmless for a flat (noise-like)
 * spectrum, not for the small top values of a spectrum with a few dominant ones. Callers check
 * the result (analyzeLayer's SPECTRUM_ROUTES) and fall back to float64.
 */
import { kernels as sharedKernels, type FloatArray, type Kernels, type Mat } from './kernels';
import { ProgressReporter, StepClock, type LinalgOptions } from './progress';
import { sharedWorkspace, type Workspace } from './workspace';

/**
 * Which Gram: 'columns' is MᵀM (cols×cols, the input side of a weight E[out, in]), 'rows' is
 * M·Mᵀ (rows×rows); 'auto' takes the smaller one.
 */
export type GramSide = 'columns' | 'rows' | 'auto';

export interface Gram {
  /** The symmetric Gram matrix, full storage, row-major (float32 only where `out` asked for it). */
  matrix: Mat<FloatArray>;
  side: 'columns' | 'rows';
  /** Shape of the matrix it was formed from; min(rows, cols) of its eigenvalues are σ². */
  rows: number;
  cols: number;
}

export interface GramOptions extends LinalgOptions {
  side?: GramSide;
  /**
   * Scales the columns of M first: the Gram of M·diag(c). On the 'columns' side this equals
   * diag(c)·MᵀM·diag(c), which a caller holding MᵀM can get without a new product (see
   * symmetricEigenvalues' `scale`); on the 'rows' side it is M·diag(c²)·Mᵀ and needs one.
   */
  columnScale?: Float32Array | Float64Array;
  /** Arithmetic of the product (see above); the result is float64 either way. Default 'float64'. */
  precision?: 'float64' | 'float32';
  /**
   * Where to put the result (length ≥ n²); by default a new float64 array. A float32 `out` keeps a
   * float32 product as it came (half the memory, and the float32 reduction reads it directly).
   */
  out?: FloatArray;
  kernels?: Kernels;
  workspace?: Workspace;
}

/** Rows of the Gram computed per call: about 60 ms of GEMM at n = 4096. */
const BLOCK = 256;

export function resolveSide(rows: number, cols: number, side: GramSide = 'auto'): 'columns' | 'rows' {
  if (side !== 'auto') return side;
  return cols <= rows ? 'columns' : 'rows';
}

/** The Gram matrix of M in float64 (see {@link GramSide}). */
export async function gram(m: Mat, opts: GramOptions = {}): Promise<Gram> {
  const side = resolveSide(m.rows, m.cols, opts.side);
  const n = side === 'columns' ? m.cols : m.rows;
  const out = opts.out ? opts.out.subarray(0, n * n) : new Float64Array(n * n);
  if (out.length < n * n) throw new Error(`gram: output has ${out.length} entries, needs ${n * n}`);
  await gramInto(m, side, out, opts);
  return { matrix: { data: out, rows: n, cols: n }, side, rows: m.rows, cols: m.cols };
}

/**
 * Writes the Gram (full symmetric storage) into `out` (float64 or float32). Only the lower block triangle is
 * multiplied, by block rows G[i₀:i₁, 0:i₁] = X[i₀:i₁]·X[0:i₁]ᵀ with X the float64 copy of M
 * (side 'rows') or of Mᵀ (side 'columns'), so that both operands are contiguous row ranges.
 */
export async function gramInto(
  m: Mat,
  side: 'columns' | 'rows',
  out: FloatArray,
  opts: GramOptions = {},
): Promise<void> {
  const clock = new StepClock(opts.signal);
  const progress = new ProgressReporter(opts.onProgress);
  clock.check();
  const ws = opts.workspace ?? sharedWorkspace();
  const k = opts.kernels ?? sharedKernels();
  const n = side === 'columns' ? m.cols : m.rows;
  const inner = side === 'columns' ? m.rows : m.cols;
  if (opts.columnScale && opts.columnScale.length !== m.cols) {
    throw new Error(`gram: columnScale has ${opts.columnScale.length} entries, expected ${m.cols}`);
  }
  if (n === 0) return;
  if (inner === 0) {
    out.fill(0, 0, n * n);
    return;
  }
  const x = gramOperand(m, side, { ...opts, workspace: ws });
  await clock.tick();
  await gramOfOperand(x, n, inner, out, k, clock, progress);
}

/**
 * The operand X of a Gram X·Xᵀ: M·diag(c) on the rows side, (M·diag(c))ᵀ on the columns side, as
 * n × inner row-major in the Gram's precision, in workspace memory. A float32 M on the rows side
 * without a scale is its own operand unless `copy` asks for one the caller may modify.
 */
export function gramOperand(
  m: Mat,
  side: 'columns' | 'rows',
  opts: Pick<GramOptions, 'precision' | 'columnScale' | 'workspace'> & { copy?: boolean } = {},
): FloatArray {
  const ws = opts.workspace ?? sharedWorkspace();
  const n = side === 'columns' ? m.cols : m.rows;
  const inner = side === 'columns' ? m.rows : m.cols;
  const f32 = opts.precision === 'float32';
  if (f32 && side === 'rows' && !opts.columnScale && !opts.copy && m.data instanceof Float32Array) return m.data;
  const x = f32 ? ws.f32('gram-operand32', n * inner) : ws.f64('gram-operand', n * inner);
  if (side === 'columns') transposeWiden(m.data, m.rows, m.cols, x, opts.columnScale);
  else widen(m.data, m.rows, m.cols, x, opts.columnScale);
  return x;
}

/**
 * Writes X·Xᵀ (full symmetric storage) for the n × inner row-major X into `out`, multiplying only
 * the lower block triangle.
 */
export async function gramOfOperand(
  x: FloatArray,
  n: number,
  inner: number,
  out: FloatArray,
  k: Kernels,
  clock: StepClock,
  progress?: ProgressReporter,
): Promise<void> {
  const total = (n * (n + 1)) / 2;
  for (let i0 = 0; i0 < n; i0 += BLOCK) {
    const r = Math.min(BLOCK, n - i0);
    const l = i0 + r;
    const blk = (
      await k.matmul(
        { data: x.subarray(i0 * inner, l * inner), rows: r, cols: inner },
        { data: x.subarray(0, l * inner), rows: l, cols: inner },
        { transB: true },
      )
    ).data;
    clock.check();
    for (let rr = 0; rr < r; rr++) out.set(blk.subarray(rr * l, rr * l + l), (i0 + rr) * n);
    // Mirror into the rows above, writing contiguous runs.
    for (let c = 0; c < i0; c++) {
      const dst = c * n + i0;
      for (let rr = 0, src = c; rr < r; rr++, src += l) out[dst + rr] = blk[src]!;
    }
    progress?.set((l * (l + 1)) / 2 / total);
    await clock.tick();
  }
}

/** x (rows×cols) = M·diag(c). */
function widen(src: FloatArray, rows: number, cols: number, x: FloatArray, c?: Float32Array | Float64Array): void {
  if (!c) {
    x.set(src.subarray(0, rows * cols));
    return;
  }
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    for (let j = 0; j < cols; j++) x[row + j] = src[row + j]! * c[j]!;
  }
}

/** x (cols×rows) = (M·diag(c))ᵀ, in tiles so that both sides stay in cache. */
function transposeWiden(
  src: FloatArray,
  rows: number,
  cols: number,
  x: FloatArray,
  c?: Float32Array | Float64Array,
): void {
  const T = 64;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(rows, i0 + T);
    for (let j0 = 0; j0 < cols; j0 += T) {
      const j1 = Math.min(cols, j0 + T);
      for (let j = j0; j < j1; j++) {
        const dst = j * rows;
        const cj = c ? c[j]! : 1;
        for (let i = i0; i < i1; i++) x[dst + i] = src[i * cols + j]! * cj;
      }
    }
  }
}
