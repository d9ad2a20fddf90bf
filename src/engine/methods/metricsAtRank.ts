/**
 * The numbers a user reads for one layer at one rank, derived from a LayerAnalysis in O(1): this
 * is what makes the rank slider instant. Browser-safe (no Node API): the webviews import it too.
 */
import { lowRankCost, parseFormat, withTile, tileOf, type NumberFormat } from '../quantizers';
import type { FactorTiling, LayerAnalysis } from './layerAnalysis';

export interface RankMetrics {
  rank: number;
  /** ‖W − Ŵ‖_F / ‖W‖_F */
  weightError: number;
  /** √(tr(ΔW R ΔWᵀ) / tr(W R Wᵀ)); null without calibration. */
  outputError: number | null;
  outputErrorKind: LayerAnalysis['outputErrorKind'];
  /** 10·log10(‖W‖² / ‖ΔW‖²) */
  weightSqnrDb: number;
  outputSqnrDb: number | null;
  /** Share of the error energy (in the method's own norm) that rank k removes, with quantized factors. */
  recovered: number;
  /** Same with unquantized factors (Eckart–Young optimum of the method's objective). */
  recoveredIdeal: number;
  bitsPerWeight: number;
  /** The workbook's average over all stored elements (A and B included). */
  averageBitsPerStoredElement: number;
  bytes: number;
  /** Bytes of A and B relative to the quantized weight's bytes. */
  overhead: number;
}

function factorFormatWithTiling(factorFormat: string, tiling: FactorTiling): NumberFormat {
  const f = parseFormat(factorFormat);
  const t = tileOf(f);
  if (!t) return f;
  const size = Math.max(t[0], t[1]);
  // lowRankCost applies one tile to A [in, k] and B [k, out]: [1, n] tiles both along their last
  // dimension, [n, 1] both along their first, which are exactly the two tilings we offer.
  return withTile(f, tiling === 'last-dim' ? [1, size] : [size, 1]);
}

const sqnr = (signal: number, noise: number) => (noise > 0 ? 10 * Math.log10(signal / noise) : Infinity);

export function metricsAtRank(a: LayerAnalysis, rank: number): RankMetrics {
  const k = Math.max(0, Math.min(a.maxRank, Math.round(rank)));
  const [out, nIn] = a.shape;
  const wErr = a.curves.weightErrSq[k]!;
  const oErr = a.curves.outputErrSq ? a.curves.outputErrSq[k]! : null;
  const objective0 = a.curves.objectiveErrSq[0]!;
  const cost = lowRankCost({
    nIn,
    nOut: out,
    rank: k,
    weightFormat: parseFormat(a.weightFormat),
    factorFormat: factorFormatWithTiling(a.factorFormat, a.factorTiling),
  });
  return {
    rank: k,
    weightError: a.norms.weightSq > 0 ? Math.sqrt(wErr / a.norms.weightSq) : 0,
    outputError: oErr !== null && a.norms.outputSq ? Math.sqrt(oErr / a.norms.outputSq) : null,
    outputErrorKind: a.outputErrorKind,
    weightSqnrDb: sqnr(a.norms.weightSq, wErr),
    outputSqnrDb: oErr !== null && a.norms.outputSq !== null ? sqnr(a.norms.outputSq, oErr) : null,
    recovered: objective0 > 0 ? 1 - a.curves.objectiveErrSq[k]! / objective0 : 0,
    recoveredIdeal:
      a.curves.objectiveIdealSq[0]! > 0 ? 1 - a.curves.objectiveIdealSq[k]! / a.curves.objectiveIdealSq[0]! : 0,
    bitsPerWeight: cost.bitsPerOriginalWeight,
    averageBitsPerStoredElement: cost.averageBitsPerStoredElement,
    bytes: cost.totalBytes,
    overhead: cost.overheadRatio,
  };
}
