/**
 * The error-reconstruction methods Quant Lens offers and what each needs from calibration.
 */
import type { StatKind } from '../calibration/statKinds';

export const METHOD_NAMES = ['rtn', 'lqer', 'l2qer', 'qera-approx', 'qera-exact'] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

export interface MethodInfo {
  name: MethodName;
  label: string;
  /** One line for tooltips and the README. */
  description: string;
  /** The statistic it needs from a calibration file, if any. */
  needs: StatKind | null;
}

export const METHODS: Record<MethodName, MethodInfo> = {
  rtn: { name: 'rtn', label: 'RTN', description: 'round-to-nearest quantization, no correction', needs: null },
  lqer: {
    name: 'lqer',
    label: 'LQER',
    description: 'rank-k SVD of the quantization error E = W − W_q',
    needs: null,
  },
  l2qer: {
    name: 'l2qer',
    label: 'L²QER',
    description: 'SVD of the error scaled by the activation statistic S = max over batches of mean |x| (LQER paper)',
    needs: 'act_mean_abs',
  },
  'qera-approx': {
    name: 'qera-approx',
    label: 'QERA-approx',
    description: 'SVD of the error scaled by the per-channel activation RMS (QERA, diagonal approximation)',
    needs: 'act_rms',
  },
  'qera-exact': {
    name: 'qera-exact',
    label: 'QERA-exact',
    description: 'closed-form optimum for the expected output error: SVD of Lᵀ(W − W_q)ᵀ with R_xx = LLᵀ (Cholesky)',
    needs: 'act_gram',
  },
};

export function isMethodName(s: string): s is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(s);
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
