/**
 * What the overview and the tree show about analysed layers, derived from LayerAnalysis results
 * at the checkpoint's current rank, and the model-wide bit accounting (which needs no analysis).
 * Free of the VS Code API.
 */
import { elementCount } from '../../engine/readers/checkpoint';
import type { LayerAnalysis } from '../../engine/methods/layerAnalysis';
import { metricsAtRank } from '../../engine/methods/metricsAtRank';
import { appliedRank } from '../../engine/methods/methods';
import { lowRankCost, parseFormat, tileOf, withTile, type NumberFormat } from '../../engine/quantizers';
import type { CheckpointSummary, LinearLayer } from '../../shared/checkpointSummary';
import { finiteOrNull } from '../../shared/formatting';
import {
  FACTOR_TILING,
  factorFormatString,
  sliderMaxRank,
  weightFormatString,
  type QuantSettings,
} from '../../shared/quantSettings';
import type { LayerResultRow, ModelTotals } from '../../shared/protocol/overview';

export function resultRow(a: LayerAnalysis, rank: number): LayerResultRow {
  const m = metricsAtRank(a, rank);
  const m0 = metricsAtRank(a, 0);
  return {
    name: a.name,
    weightErrorRtn: finiteOrNull(m0.weightError),
    weightError: finiteOrNull(m.weightError),
    outputError: finiteOrNull(m.outputError),
    outputErrorEstimated: a.outputErrorKind === 'diagonal-estimate',
    weightSqnrDb: finiteOrNull(m.weightSqnrDb),
    recovered: finiteOrNull(m.recovered),
    bitsPerWeight: m.bitsPerWeight,
    bytes: m.bytes,
    nonFinite: a.nonFinite,
  };
}

/** The factor format with the tile lowRankCost applies to both A and B (see metricsAtRank). */
function factorCostFormat(s: QuantSettings): NumberFormat {
  const f = parseFormat(factorFormatString(s));
  const t = tileOf(f);
  if (!t) return f;
  const size = Math.max(t[0], t[1]);
  return withTile(f, FACTOR_TILING === 'last-dim' ? [1, size] : [size, 1]);
}

/** The rank a layer actually gets: the setting, capped by the layer's shape; 0 for RTN. */
export function effectiveRank(s: QuantSettings, shape: readonly [number, number]): number {
  return appliedRank(s.method, Math.min(s.rank, sliderMaxRank(shape)));
}

/** Bytes a layer's weight occupies in the checkpoint (its share of a stacked expert tensor). */
function storedBytes(layer: LinearLayer, summary: CheckpointSummary): number {
  const t = summary.tensors.find((x) => x.name === (layer.tensor ?? layer.name));
  if (!t) return 0;
  const n = elementCount(t.shape);
  return n > 0 ? (t.byteLength * layer.shape[0] * layer.shape[1]) / n : 0;
}

export function modelTotals(
  summary: CheckpointSummary,
  quantized: readonly LinearLayer[],
  settings: QuantSettings,
  rows: readonly LayerResultRow[],
): ModelTotals {
  const weightFormat = parseFormat(weightFormatString(settings));
  const factorFormat = factorCostFormat(settings);
  let params = 0;
  let quantizedBytes = 0;
  let replacedBytes = 0;
  let weightBits = 0;
  let factorBits = 0;
  for (const l of quantized) {
    const [out, nIn] = l.shape;
    const cost = lowRankCost({ nIn, nOut: out, rank: effectiveRank(settings, l.shape), weightFormat, factorFormat });
    params += out * nIn;
    quantizedBytes += cost.totalBytes;
    weightBits += cost.weight.totalBits;
    factorBits += cost.factorA.totalBits + cost.factorB.totalBits;
    replacedBytes += storedBytes(l, summary);
  }
  const originalBytes = summary.tensors.reduce((a, t) => a + t.byteLength, 0);
  const mean = (values: (number | null)[]) => {
    const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  return {
    quantizedLayers: quantized.length,
    quantizedParameters: params,
    bitsPerWeight: params ? (8 * quantizedBytes) / params : 0,
    quantizedBytes,
    modelBytes: Math.max(0, originalBytes - replacedBytes) + quantizedBytes,
    originalBytes,
    factorOverhead: weightBits ? factorBits / weightBits : 0,
    analysedLayers: rows.length,
    meanWeightError: mean(rows.map((r) => r.weightError)),
    meanOutputError: mean(rows.map((r) => r.outputError)),
  };
}
