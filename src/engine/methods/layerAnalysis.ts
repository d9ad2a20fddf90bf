/**
 * The plain-data result types of a layer analysis. Kept apart from analyzeLayer.ts (which pulls in
 * the linear-algebra kernels) so that code running in webviews can import them without Node.
 */
import type { MethodName } from './methods';
import type { StepFitSummary } from './stepFitTypes';
import type { GgmlStorage } from '../quantizers/ggml/ggmlQuant';

export type FactorTiling = 'last-dim' | 'first-dim';

export interface AnalysisSettings {
  method: MethodName;
  /** Weight format string, e.g. 'mxint4' (tile along `in` by default). */
  weightFormat: string;
  /** Format of A and B, e.g. 'mxint8'. Its block size is used with the tiling below. */
  factorFormat: string;
  /**
   * 'last-dim': tiles run along each factor's last dimension (A [in,k]: along k; B [k,out]: along
   * out), as in the paper's runs. 'first-dim': along the first (A: along in; B: along k).
   */
  factorTiling: FactorTiling;
  /** Largest rank R of the decomposition; curves cover k = 0…R. */
  maxRank: number;
  /** Relative ridge δ/mean(diag R) for QERA-exact's Cholesky factor. */
  ridge?: number;
  /** Compute the two full spectra (the bulk of the time on big layers). Default true. */
  spectra?: boolean;
}

/** Activation statistics of the layer's input, as far as the calibration source has them. */
export interface LayerCalibration {
  meanAbs?: Float32Array;
  rms?: Float32Array;
  /** R = E[x xᵀ], [in, in], float64. */
  gram?: Float64Array;
  tokens?: number;
}

export type OutputErrorKind = 'exact' | 'diagonal-estimate' | null;

export interface LayerAnalysis {
  name: string;
  shape: [out: number, inFeatures: number];
  method: MethodName;
  weightFormat: string;
  factorFormat: string;
  factorTiling: FactorTiling;
  /** R: curves have R + 1 entries (k = 0…R). 0 for RTN. */
  maxRank: number;
  /** All min(out, in) singular values of E, descending (empty when spectra were skipped). */
  sigmaPlain: Float64Array;
  /** All singular values of the method's scaled error (equal to sigmaPlain for RTN and LQER). */
  sigmaScaled: Float64Array;
  /** The per-input-channel scale the method used (diagonal methods), for the activation view. */
  scale: Float64Array | null;
  /** Raw activation statistics, for the activation view. */
  activation: { meanAbs: Float32Array | null; rms: Float32Array | null; tokens: number | null };
  norms: {
    /** ‖W‖²_F */
    weightSq: number;
    /** ‖E‖²_F = ‖W − W_q‖²_F */
    errorSq: number;
    /** tr(W R Wᵀ) (exact) or Σ rms²·‖W[:,i]‖² (diagonal estimate); null without calibration. */
    outputSq: number | null;
  };
  curves: {
    /** ‖W − Ŵ_k‖²_F with quantized A and B, k = 0…R. */
    weightErrSq: Float64Array;
    /** tr(ΔW_k R ΔW_kᵀ) (or its diagonal estimate), k = 0…R; null without calibration. */
    outputErrSq: Float64Array | null;
    /** The method's own objective ‖S(E' − C_k)‖² with quantized factors. */
    objectiveErrSq: Float64Array;
    /** Σ_{i>k} σ_scaled,i²: the same objective with unquantized factors (the Eckart–Young optimum). */
    objectiveIdealSq: Float64Array;
  };
  outputErrorKind: OutputErrorKind;
  /** ‖M − U_RΣ_RV_Rᵀ‖ achieved by the randomized SVD and the optimum √Σ_{i>R}σᵢ² (when spectra exist). */
  factorResidual: { achieved: number; optimal: number | null } | null;
  /** Ridge added to R for QERA-exact. */
  ridge: number | null;
  /** Count of NaN / ±Inf values in the weight (they are reported, and make the numbers meaningless). */
  nonFinite: number;
  /** Fitted step sizes (weight formats `int…:fitted`): the objective and its value before and after. */
  stepFit?: StepFitSummary;
  /**
   * Set on an early, partial result of a progressive analysis (absent on a complete one). Its
   * numbers are exact as far as they go: the curves stop at `maxRank` (the full result has
   * `finalMaxRank`), and, when `spectra`, sigmaPlain / sigmaScaled hold only the top values (from
   * the randomized SVD) until the full spectra arrive.
   */
  preview?: { finalMaxRank: number; spectra: boolean };
  /**
   * llama.cpp weight formats: the ggml type the weight is stored in (after llama-quantize's
   * fall-back when its rows do not split into the type's blocks) and whether the importance
   * matrix (act_rms² from calibration) weighted the quantization.
   */
  ggml?: GgmlStorage;
  /**
   * How each full spectrum was computed (absent on partial results and without spectra), so that
   * a user can tell what accuracy it carries: every route meets top 64 σ within 1e-4 relative and
   * all within 1e-3·σ₁ of float64 LAPACK (docs/algorithms.md §8.3).
   */
  spectrumRoutes?: { plain: SpectrumRouteName; scaled: SpectrumRouteName };
  timings: Record<string, number>;
}

/**
 * How a spectrum was computed: the Gram's and the dense → band reduction's arithmetic
 * (`gram/reduction`), or 'deflated': its dominant values split off in float64 and the rest reduced
 * in float32 (linalg/deflated-spectrum.ts).
 */
export type SpectrumRouteName = `${'float32' | 'float64'}/${'float32' | 'float64'}` | 'deflated';
