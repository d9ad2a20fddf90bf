/**
 * Gram matrices, in float64 (or float32 storage where asked). By default M is widened to float64 (exact) and multiplied
 * there. With `precision: 'float32'` a float32 M is multiplied as it is, three times faster
 * through onnxruntime; the product then carries rounding errors of order 1e-7 relative in each
 * entry, which moves eigenvalues by a few 1e-7·σ₁² at most: harmless for a flat (noise-like)
 * spectrum, not for the small top values of a spectrum with a few dominant ones. Callers check
 * the result (analyzeLayer's SPECTRUM_ROUTES) and fall back to float64.
 */
import { gramBlockGraph, gramBlockGraphKey } from './graphs';
import { dtypeOf, kernels as sharedKernels, type FloatArray, type Kernels, type Mat, type TensorArg } from './kernels';
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
  /** Most memory a transposed copy of M may take on the columns side (default CHUNK_BYTES). */
  chunkBytes?: number;
  kernels?: Kernels;
  workspace?: Workspace;
}

/** Rows of the Gram computed per call: about 60 ms of GEMM at n = 4096. */
const BLOCK = 256;
/**
 * Most memory a transposed copy of M takes on the columns side; a taller M is transposed a chunk
 * of rows at a time (see gramInto). Summing chunks costs a little (5632×2048, three chunks of
 * 2048 rows: 185–200 ms against 151–156 ms in a warm process), so layers of common sizes stay whole.
 */
const CHUNK_BYTES = 64 * 2 ** 20;

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
 * multiplied, by block rows G[i₀:i₁, 0:i₁] = X[i₀:i₁]·X[0:i₁]ᵀ with X the copy of M (side 'rows')
 * or of Mᵀ (side 'columns') in the product's precision, so that both operands are contiguous row
 * ranges. On the columns side a tall M is transposed a chunk of rows at a time (CHUNK_BYTES) and
 * the chunks' Grams summed: a whole transposed copy of a 14336×4096 float32 layer is 235 MB of
 * memory touched for the first time (about 2.6 ms per MB on these machines), a chunk 64 MB.
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
  const f32 = opts.precision === 'float32';
  const chunkRows = Math.max(BLOCK, Math.floor((opts.chunkBytes ?? CHUNK_BYTES) / (n * (f32 ? 4 : 8))));
  if (side === 'rows' || inner <= chunkRows) {
    const x = gramOperand(m, side, { ...opts, workspace: ws });
    await clock.tick();
    await gramOfOperand(x, n, inner, out, k, clock, { onFraction: (f) => progress.set(f), workspace: ws });
    return;
  }
  const x = f32 ? ws.f32('gram-chunk32', n * chunkRows) : ws.f64('gram-chunk', n * chunkRows);
  for (let t0 = 0; t0 < inner; t0 += chunkRows) {
    const t1 = Math.min(inner, t0 + chunkRows);
    const w = t1 - t0;
    transposeWiden(m.data.subarray(t0 * m.cols, t1 * m.cols), w, m.cols, x, opts.columnScale);
    await clock.tick();
    await gramOfOperand(x.subarray(0, n * w), n, w, out, k, clock, {
      accumulate: t0 > 0,
      mirror: t1 === inner,
      onFraction: (f) => progress.set((t0 + f * w) / inner),
      workspace: ws,
    });
  }
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
  const name = f32 ? 'gram-operand32' : 'gram-operand';
  // A scaled float32 operand of M whose unscaled one is still in the buffer (E's Gram formed it
  // before the deflated scaled spectrum asks for this) is scaled in place: the same products,
  // rounded once, without a second transpose of M (35–45 ms at 5632×2048).
  const held = f32 && opts.columnScale ? ws.tag(name) : undefined;
  if (held instanceof OperandTag && held.matches(m, side) && held.scale === null) {
    const x = ws.peek32(name, n * inner)!;
    scaleOperand(x, side, n, inner, opts.columnScale!);
    // A copy is the caller's to change: nothing may take it for M's operand afterwards.
    ws.setTag(name, opts.copy ? undefined : new OperandTag(m.data, m.rows, m.cols, side, opts.columnScale!));
    return x;
  }
  const x = f32 ? ws.f32(name, n * inner) : ws.f64(name, n * inner);
  if (side === 'columns') transposeWiden(m.data, m.rows, m.cols, x, opts.columnScale);
  else widen(m.data, m.rows, m.cols, x, opts.columnScale);
  if (f32 && !opts.copy) ws.setTag(name, new OperandTag(m.data, m.rows, m.cols, side, opts.columnScale ?? null));
  return x;
}

/** Which matrix, side and scale a Gram operand buffer holds. */
class OperandTag {
  constructor(
    readonly data: FloatArray,
    readonly rows: number,
    readonly cols: number,
    readonly side: 'columns' | 'rows',
    readonly scale: Float32Array | Float64Array | null,
  ) {}

  matches(m: Mat, side: 'columns' | 'rows'): boolean {
    return this.data === m.data && this.rows === m.rows && this.cols === m.cols && this.side === side;
  }
}

/** x·diag(c) on the rows side, diag(c)·x on the columns side (x is the n × inner operand). */
function scaleOperand(
  x: FloatArray,
  side: 'columns' | 'rows',
  n: number,
  inner: number,
  c: Float32Array | Float64Array,
): void {
  if (side === 'columns') {
    for (let i = 0; i < n; i++) {
      const ci = c[i]!;
      const row = x.subarray(i * inner, (i + 1) * inner);
      for (let t = 0; t < inner; t++) row[t] = row[t]! * ci;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const row = i * inner;
      for (let j = 0; j < inner; j++) x[row + j] = x[row + j]! * c[j]!;
    }
  }
}

export interface GramOfOperandOptions {
  /** Add X·Xᵀ to the lower block triangle already in `out` instead of overwriting it. */
  accumulate?: boolean;
  /** Mirror the lower triangle into the upper one (default true; off for all but a last addend). */
  mirror?: boolean;
  /** Told the fraction of the product done. */
  onFraction?: (fraction: number) => void;
  workspace?: Workspace;
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
  opts: GramOfOperandOptions = {},
): Promise<void> {
  const total = (n * (n + 1)) / 2;
  const ws = opts.workspace ?? sharedWorkspace();
  const dtype = dtypeOf(x);
  const buf = (name: string) => (dtype === 'float32' ? ws.f32(`${name}32`, BLOCK * n) : ws.f64(name, BLOCK * n));
  const acc = opts.accumulate ? buf('gram-acc') : undefined;
  const y = buf('gram-block');
  const key = gramBlockGraphKey(dtype, !!acc);
  for (let i0 = 0; i0 < n; i0 += BLOCK) {
    const r = Math.min(BLOCK, n - i0);
    const l = i0 + r;
    const feeds: Record<string, TensorArg> = {
      Xr: { data: x.subarray(i0 * inner, l * inner), dims: [r, inner] },
      Xl: { data: x.subarray(0, l * inner), dims: [l, inner] },
    };
    if (acc) {
      // The block row so far, gathered contiguous, is the product's addend.
      const c = acc.subarray(0, r * l);
      for (let rr = 0; rr < r; rr++) c.set(out.subarray((i0 + rr) * n, (i0 + rr) * n + l), rr * l);
      feeds.C = { data: c, dims: [r, l] };
    }
    const blk = y.subarray(0, r * l);
    await k.run(key, () => gramBlockGraph(dtype, !!acc), feeds, { Y: { data: blk, dims: [r, l] } });
    clock.check();
    for (let rr = 0; rr < r; rr++) out.set(blk.subarray(rr * l, rr * l + l), (i0 + rr) * n);
    if (opts.mirror !== false) {
      // Mirror into the rows above, writing contiguous runs.
      for (let c = 0; c < i0; c++) {
        const dst = c * n + i0;
        for (let rr = 0, src = c; rr < r; rr++, src += l) out[dst + rr] = blk[src]!;
      }
    }
    opts.onFraction?.((l * (l + 1)) / 2 / total);
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
