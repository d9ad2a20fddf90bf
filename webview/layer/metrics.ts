/**
 * The live metrics beside the charts, as label/value pairs for one rank. Everything comes from
 * metricsAtRank (O(1) on the precomputed curves): this is the whole cost of a slider step.
 */
import { METHODS } from '../../src/engine/methods/methods';
import { metricsAtRank } from '../../src/engine/methods/metricsAtRank';
import { formatBits, formatBytes, formatDb, formatPercent } from '../../src/shared/formatting';
import type { LayerAnalysis } from '../../src/shared/protocol/layer';

export const METRIC_KEYS = [
  'rank',
  'weightError',
  'outputError',
  'weightSqnr',
  'outputSqnr',
  'recovered',
  'bits',
  'bytes',
  'overhead',
] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

export const METRIC_LABELS: Record<MetricKey, string> = {
  rank: 'Rank k',
  weightError: 'Weight error ‖ΔW‖/‖W‖',
  outputError: 'Output error',
  weightSqnr: 'Weight SQNR',
  outputSqnr: 'Output SQNR',
  recovered: 'Error recovered',
  bits: 'Bits per weight',
  bytes: 'Size (W_q + A + B)',
  overhead: 'A·B overhead',
};

export type MetricValues = Record<MetricKey, string>;

export function metricValues(a: LayerAnalysis, rank: number): MetricValues {
  const k = Math.max(0, Math.min(a.maxRank, Math.round(rank)));
  const m = metricsAtRank(a, k);
  const rtn = k === 0 ? m : metricsAtRank(a, 0);
  const outputError =
    m.outputError === null
      ? 'needs calibration'
      : `${formatPercent(m.outputError)}${a.outputErrorKind === 'diagonal-estimate' ? ' (estimate)' : ''}`;
  return {
    rank: METHODS[a.method].corrects ? String(k) : `0 (${METHODS[a.method].label}: no correction)`,
    weightError:
      k === 0
        ? formatPercent(m.weightError)
        : `${formatPercent(m.weightError)} (RTN ${formatPercent(rtn.weightError)})`,
    outputError,
    weightSqnr: formatDb(Number.isFinite(m.weightSqnrDb) ? m.weightSqnrDb : null),
    outputSqnr: m.outputSqnrDb === null ? '—' : formatDb(Number.isFinite(m.outputSqnrDb) ? m.outputSqnrDb : null),
    recovered: a.maxRank === 0 ? '—' : `${formatPercent(m.recovered, 1)} (ideal ${formatPercent(m.recoveredIdeal, 1)})`,
    bits: formatBits(m.bitsPerWeight),
    bytes: formatBytes(m.bytes),
    overhead: formatPercent(m.overhead, 1),
  };
}
