/**
 * All singular values through the Gram matrix: σᵢ(M)² = λᵢ(MᵀM). In float64 the eigenvalues carry
 * absolute errors near 1e-16·n·σ₁², so σᵢ is good to about 1e-8·σ₁ absolutely and to ~1e-13
 * relatively for values above 1e-3·σ₁, well inside what a spectrum plot or a tail-energy sum needs.
 */
import { gramInto, resolveSide, type Gram, type GramSide } from './gram';
import type { Kernels, Mat } from './kernels';
import { subProgress, type LinalgOptions } from './progress';
import {
  eigenvaluesInPlace,
  symmetricEigenvalues,
  type BandOffload,
  type EigenvalueOptions,
} from './symmetric-eigenvalues';
import { sharedWorkspace, type Workspace } from './workspace';

export interface SingularValueOptions extends LinalgOptions {
  /** Gram side; 'auto' (default) takes the smaller. */
  side?: GramSide;
  /** Singular values of M·diag(c) instead of M (gram.ts: the scale is folded into the product). */
  columnScale?: Float32Array | Float64Array;
  /** Arithmetic of the Gram product (see gram.ts). */
  precision?: 'float64' | 'float32';
  /** Arithmetic of the dense → band reduction (see symmetric-eigenvalues.ts); default float64. */
  reduction?: 'float64' | 'float32';
  /** See EigenvalueOptions.bandElsewhere. */
  bandElsewhere?: BandOffload;
  kernels?: Kernels;
  workspace?: Workspace;
}

/** Share of the time spent forming the Gram (n = 4096); only steers the progress bar. */
const GRAM_SHARE = 0.2;

/** All min(rows, cols) singular values of M (float32 or float64), descending. */
export async function singularValues(m: Mat, opts: SingularValueOptions = {}): Promise<Float64Array> {
  const side = resolveSide(m.rows, m.cols, opts.side);
  const n = side === 'columns' ? m.cols : m.rows;
  const ws = opts.workspace ?? sharedWorkspace();
  const a = opts.reduction === 'float32' ? ws.f32('a0-32', n * n) : ws.f64('a0', n * n);
  const shared = { ...(opts.kernels ? { kernels: opts.kernels } : {}), workspace: ws };
  await gramInto(m, side, a, {
    ...subProgress(opts, 0, GRAM_SHARE),
    ...shared,
    ...(opts.columnScale ? { columnScale: opts.columnScale } : {}),
    ...(opts.precision ? { precision: opts.precision } : {}),
  });
  const ev = await eigenvaluesInPlace(a, n, {
    ...subProgress(opts, GRAM_SHARE, 1),
    ...shared,
    ...(opts.bandElsewhere ? { bandElsewhere: opts.bandElsewhere } : {}),
  });
  return squareRoots(ev, Math.min(m.rows, m.cols));
}

/**
 * Singular values of the matrix a Gram was formed from, or, with `scale`, of M·diag(s) for a
 * 'columns' Gram (its eigenvalues are those of diag(s)·MᵀM·diag(s)): the L²QER spectrum reuses
 * the plain one's Gram this way instead of forming a second. With `overwrite` a Gram of the
 * reduction's precision is its scratch (no n² copy) and is garbage afterwards.
 */
export async function singularValuesFromGram(g: Gram, opts: EigenvalueOptions = {}): Promise<Float64Array> {
  if (opts.scale && g.side !== 'columns') {
    throw new Error('singularValuesFromGram: a scale applies to the columns of M and needs the MᵀM Gram');
  }
  const ev = await symmetricEigenvalues(g.matrix, opts);
  return squareRoots(ev, Math.min(g.rows, g.cols));
}

/** √max(λ, 0) of the first `count` eigenvalues; rounding can make zero eigenvalues slightly negative. */
export function squareRoots(ev: Float64Array, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(Math.max(0, ev[i]!));
  return out;
}
