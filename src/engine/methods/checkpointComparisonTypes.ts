/**
 * Plain-data types of the checkpoint comparison (compareCheckpoints.ts). Browser-safe: the
 * comparison webview imports them.
 */

export type ChangeVerdict = 'identical' | 'unchanged' | 'changed';

export interface LayerDifference {
  name: string;
  /** The paired layer's name in the second checkpoint. */
  nameB: string;
  shape: [out: number, inFeatures: number];
  normA: number;
  normB: number;
  /** ‖W₂ − W₁‖_F */
  diffNorm: number;
  /** ‖W₂ − W₁‖_F / ‖W₁‖_F */
  relative: number;
  maxAbs: number;
  verdict: ChangeVerdict;
  /** All singular values of ΔW, descending (empty when spectra were skipped). */
  sigma: Float64Array;
  /** Smallest k whose top-k singular values hold 90 % of ‖ΔW‖² (null without the spectrum). */
  rank90: number | null;
  /** ‖ΔW‖²_F / σ₁² (null without the spectrum, or when ΔW = 0). */
  stableRank: number | null;
  ropeUnpermuted?: boolean;
  /**
   * NaN or infinite weights on either side, counted: left out of the norms, no spectrum. `differ`:
   * the two sides are not non-finite at the same entries with the same values (a change).
   */
  nonFinite?: { a: number; b: number; differ: boolean };
}

export interface CheckpointComparison {
  a: string;
  b: string;
  tolerance: number;
  layers: LayerDifference[];
  onlyInA: string[];
  onlyInB: string[];
  shapeMismatch: { a: string; b: string; shapeA: [number, number]; shapeB: [number, number] }[];
}

/** Default tolerance: bf16 rounds to 8 significant bits, a relative RMS error near 1e-3. */
export const DEFAULT_CHANGE_TOLERANCE = 5e-3;
