/**
 * All eigenvalues of a dense symmetric matrix: dense → band (GEMM-heavy, onnxruntime, in float64
 * or float32), band → tridiagonal (bulge chasing in WebAssembly, or JS, float64), tridiagonal → eigenvalues
 * (root-free QL, float64).
 */
import { isQuantLensError } from '../errors';
import { bandFromDense, bandToTridiagonal, type SymmetricBand } from './band-to-tridiagonal';
import { denseToBand } from './dense-to-band';
import { kernels as sharedKernels, type FloatArray, type Kernels, type Mat } from './kernels';
import { ProgressReporter, StepClock, type LinalgOptions } from './progress';
import { tridiagonalEigenvalues } from './tridiagonal-eigenvalues';
import { sharedWorkspace, type Workspace } from './workspace';

export interface EigenvalueOptions extends LinalgOptions {
  /** Eigenvalues of diag(s)·G·diag(s) instead of G (the scaled spectrum of L²QER / QERA-approx). */
  scale?: Float32Array | Float64Array;
  /**
   * Allow G's storage to be used as scratch (saves an n² copy) when it has the reduction's
   * precision; G is garbage afterwards.
   */
  overwrite?: boolean;
  /**
   * Arithmetic of the dense → band reduction: 'float64' (default) perturbs the eigenvalues by
   * ~1e-16·‖G‖, 'float32' by a few 6e-8·‖G‖ at about half the time (see dense-to-band.ts).
   */
  precision?: 'float64' | 'float32';
  /** Band width of the first stage; defaults to a measured good value. */
  bandwidth?: number;
  /** Columns between explicit refreshes of the trailing matrix in the first stage. */
  refreshColumns?: number;
  /** Threads for the JS bulge chase: 1, or 2 (default on machines with two or more cores). */
  chaseThreads?: number;
  /**
   * Where the band's eigenvalues may be computed instead of here (another thread); returns null
   * to have them computed here after all.
   */
  bandElsewhere?: BandOffload;
  kernels?: Kernels;
  workspace?: Workspace;
}

/**
 * Eigenvalues (descending) of a symmetric band computed elsewhere. Implementations copy the band
 * before they return, so that its storage may be reused at once (or the band reduced here after
 * all, when the promise rejects).
 */
export type BandOffload = (band: SymmetricBand, signal?: AbortSignal) => Promise<Float64Array> | null;

/** Below this order the whole matrix is treated as a band and chased in JS. */
const DIRECT_LIMIT = 96;
/**
 * Band width of the first stage, by its arithmetic. A narrower band makes the first stage's panels
 * skinnier (more, cheaper onnxruntime calls) and the JS chase proportionally cheaper. Measured,
 * first call in a process, two cores: float32 at n = 4096, b = 8: band 2.15–2.28 s + chase
 * 0.90–1.05 s; b = 16: 2.05–2.14 s + 1.26–1.53 s (n = 2048, warm: 0.61 s against 0.70 s). In
 * float64 the two are level at n = 4096 (b = 8: 3.4 + 0.8 s; b = 16: 3.0 + 1.3 s).
 */
export function defaultBandwidth(precision: 'float32' | 'float64'): number {
  return precision === 'float32' ? 8 : 16;
}

/**
 * Columns between explicit refreshes of the trailing matrix. Over the whole reduction the lazy
 * corrections of the panels cost about 3·R·n² flops for a period of R columns, while the refreshes
 * cost about the same number of flops whatever R (fewer refreshes, each with more factors); so R
 * is kept short, the floor being the per-refresh overhead (onnxruntime calls, transposes). An
 * onnxruntime profile at n = 2048 and R = 576 had the corrections at 1.5× the panels' own product
 * with the trailing matrix; R ≈ 0.35·√n·16 (256 at n = 2048, 352 at n = 4096) halves them.
 */
export function defaultRefreshColumns(n: number): number {
  return Math.min(1024, Math.max(128, 16 * Math.round(0.35 * Math.sqrt(n))));
}

/**
 * All eigenvalues of the symmetric matrix G (float64 or float32; only its lower triangle is read),
 * descending.
 */
export async function symmetricEigenvalues(g: Mat<FloatArray>, opts: EigenvalueOptions = {}): Promise<Float64Array> {
  const n = g.rows;
  if (g.cols !== n) throw new Error(`symmetricEigenvalues: matrix is ${g.rows}×${g.cols}, not square`);
  if (opts.scale && opts.scale.length !== n) {
    throw new Error(`symmetricEigenvalues: scale has ${opts.scale.length} entries, expected ${n}`);
  }
  const ws = opts.workspace ?? sharedWorkspace();
  const f32 = opts.precision === 'float32';
  const same = f32 ? g.data instanceof Float32Array : g.data instanceof Float64Array;
  const a: FloatArray = opts.overwrite && same ? g.data : f32 ? ws.f32('a0-32', n * n) : ws.f64('a0', n * n);
  copySymmetric(g.data, n, a, opts.scale);
  return eigenvaluesInPlace(a, n, opts);
}

/**
 * Eigenvalues of the symmetric n×n matrix in the first n² entries of `a`, which is destroyed; the
 * reduction runs in a's precision. Reads the lower triangle and mirrors it, so either triangle
 * may hold the data on entry only if the lower one is complete.
 */
export async function eigenvaluesInPlace(
  a: FloatArray,
  n: number,
  opts: EigenvalueOptions = {},
): Promise<Float64Array> {
  const clock = new StepClock(opts.signal);
  const progress = new ProgressReporter(opts.onProgress);
  clock.check();
  if (n === 0) return new Float64Array(0);
  if (n <= DIRECT_LIMIT) {
    const band = bandFromDense(a, n, n - 1);
    const t = await bandToTridiagonal(band, clock, undefined, opts.chaseThreads);
    const ev = await tridiagonalEigenvalues(t.d, t.e, clock);
    progress.set(1, true);
    return ev;
  }
  const ws = opts.workspace ?? sharedWorkspace();
  const b = opts.bandwidth ?? defaultBandwidth(a instanceof Float32Array ? 'float32' : 'float64');
  // Share of time per stage at n = 4096 (measured); the stages scale alike enough for a progress bar.
  const [stage1, stage2] = [0.55, 0.35];
  const band = await denseToBand(opts.kernels ?? sharedKernels(), a, n, ws, {
    bandwidth: b,
    refreshColumns: opts.refreshColumns ?? defaultRefreshColumns(n),
    clock,
    onColumns: (done) => progress.set((stage1 * done) / n),
  });
  const elsewhere = opts.bandElsewhere?.(band, opts.signal);
  // A helper that fails (its thread could not start, or died) leaves the work to this thread: the
  // band was copied before the offload returned, so it is still whole here.
  const ev =
    (elsewhere &&
      (await elsewhere.catch((e: unknown) => {
        if (opts.signal?.aborted || (isQuantLensError(e) && e.code === 'cancelled')) throw e;
        return null;
      }))) ??
    (await bandEigenvalues(band, {
      clock,
      onSweeps: (done) => progress.set(stage1 + (stage2 * done) / n),
      ...(opts.chaseThreads !== undefined ? { threads: opts.chaseThreads } : {}),
    }));
  progress.set(1, true);
  return ev;
}

/** Eigenvalues (descending) of a symmetric band, which is destroyed: bulge chase, then QL. */
export async function bandEigenvalues(
  band: SymmetricBand,
  opts: { signal?: AbortSignal; clock?: StepClock; onSweeps?: (done: number) => void; threads?: number } = {},
): Promise<Float64Array> {
  const clock = opts.clock ?? new StepClock(opts.signal);
  const t = await bandToTridiagonal(band, clock, opts.onSweeps, opts.threads);
  return tridiagonalEigenvalues(t.d, t.e, clock);
}

/** dst = diag(s)·G·diag(s) (or G), symmetrised from G's lower triangle. */
function copySymmetric(src: FloatArray, n: number, dst: FloatArray, scale?: Float32Array | Float64Array): void {
  if (src !== dst || scale) copyLower(src, n, dst, scale);
  // Mirror in tiles so that the transposed writes stay in cache.
  const T = 64;
  for (let i0 = 0; i0 < n; i0 += T) {
    for (let j0 = 0; j0 <= i0; j0 += T) {
      const i1 = Math.min(n, i0 + T);
      const j1 = Math.min(n, j0 + T);
      for (let j = j0; j < j1; j++) {
        const row = j * n;
        for (let i = Math.max(i0, j + 1); i < i1; i++) dst[row + i] = dst[i * n + j]!;
      }
    }
  }
}

function copyLower(src: FloatArray, n: number, dst: FloatArray, scale?: Float32Array | Float64Array): void {
  for (let i = 0; i < n; i++) {
    const si = scale ? scale[i]! : 1;
    const row = i * n;
    for (let j = 0; j <= i; j++) {
      const x = scale ? si * src[row + j]! * scale[j]! : src[row + j]!;
      dst[row + j] = x;
    }
  }
}
