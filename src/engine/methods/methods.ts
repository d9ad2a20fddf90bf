/**
 * The error-reconstruction methods Quant Lens offers, in one table with what each one does and
 * needs. Code that behaves differently per method asks this table (`corrects`, `scale`, `needs`)
 * instead of comparing method names, so adding a method is one row here plus, for a new kind of
 * scale, its case in analyzeLayer.ts's `scaleFor` (see CONTRIBUTING.md, "A new method").
 * Browser-safe: the webviews read the labels and capabilities.
 */
import type { StatKind } from '../calibration/statKinds';

export const METHOD_NAMES = ['rtn', 'lqer', 'l2qer', 'qera-approx', 'qera-exact'] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

/**
 * The scale S of the SVD of S·Eᵀ (docs/algorithms.md §3): `none` is the identity (plain SVD of
 * the error), `mean-abs` and `rms` are diagonal from the per-channel activation statistic,
 * `cholesky` is Lᵀ with R_xx = L·Lᵀ.
 */
export type ScaleKind = 'none' | 'mean-abs' | 'rms' | 'cholesky';

export interface MethodInfo {
  name: MethodName;
  label: string;
  /** One line for tooltips and the README. */
  description: string;
  /** Whether it adds a low-rank correction A·B at all (RTN does not: rank 0 whatever is asked). */
  corrects: boolean;
  scale: ScaleKind;
  /** The statistic it needs from a calibration file, if any. */
  needs: StatKind | null;
}

export const METHODS: Record<MethodName, MethodInfo> = {
  rtn: {
    name: 'rtn',
    label: 'RTN',
    description: 'round-to-nearest quantization, no correction',
    corrects: false,
    scale: 'none',
    needs: null,
  },
  lqer: {
    name: 'lqer',
    label: 'LQER',
    description: 'rank-k SVD of the quantization error E = W − W_q',
    corrects: true,
    scale: 'none',
    needs: null,
  },
  l2qer: {
    name: 'l2qer',
    label: 'L²QER',
    description: 'SVD of the error scaled by the activation statistic S = max over batches of mean |x| (LQER paper)',
    corrects: true,
    scale: 'mean-abs',
    needs: 'act_mean_abs',
  },
  'qera-approx': {
    name: 'qera-approx',
    label: 'QERA-approx',
    description: 'SVD of the error scaled by the per-channel activation RMS (QERA, diagonal approximation)',
    corrects: true,
    scale: 'rms',
    needs: 'act_rms',
  },
  'qera-exact': {
    name: 'qera-exact',
    label: 'QERA-exact',
    description: 'closed-form optimum for the expected output error: SVD of Lᵀ(W − W_q)ᵀ with R_xx = LLᵀ (Cholesky)',
    corrects: true,
    scale: 'cholesky',
    needs: 'act_gram',
  },
};

export function isMethodName(s: string): s is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(s);
}

/** Whether the method's scaled spectrum differs from the plain one (false for RTN and LQER). */
export function isScaled(method: MethodName): boolean {
  return METHODS[method].scale !== 'none';
}

/** The rank a method applies when `rank` is asked for: 0 for methods without a correction. */
export function appliedRank(method: MethodName, rank: number): number {
  return METHODS[method].corrects ? rank : 0;
}

/**
 * The method used when none is named ("auto" in the settings, no --method in the CLI): L²QER when
 * the mean |x| statistic is at hand, LQER otherwise.
 */
export function defaultMethod(hasMeanAbs: boolean): MethodName {
  return hasMeanAbs ? 'l2qer' : 'lqer';
}

/** Why a method cannot run with the calibration at hand, or null when it can. */
export function unavailableReason(method: MethodName, available: ReadonlySet<StatKind> | null): string | null {
  const need = METHODS[method].needs;
  if (!need) return null;
  if (!available) return `${METHODS[method].label} needs calibration data (${need}); set a calibration source first`;
  if (!available.has(need)) {
    return `${METHODS[method].label} needs ${need} in the calibration statistics${need === 'act_gram' ? ' (calibrate with --gram)' : ''}`;
  }
  return null;
}
