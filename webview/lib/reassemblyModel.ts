/**
 * The numbers of the layer panel's channel reassembly section, from the worker's result: outlier
 * channels, the site's output MSE for each variant relative to the output's power, and the
 * activation ranges before and after. Pure; unit-tested.
 */
import type { ReassemblyResult } from '../../src/shared/protocol/layer';

/** Channels whose max |x| exceeds θ: the ones disassembly splits. */
export function outlierChannels(channelMax: ArrayLike<number>, theta: number | null): number[] {
  if (theta === null) return [];
  const out: number[] = [];
  for (let c = 0; c < channelMax.length; c++) if (channelMax[c]! > theta) out.push(c);
  return out;
}

export interface MseRow {
  id: 'none' | 'reassembled' | 'l2qer' | 'both';
  label: string;
  /** mean (y − ŷ)² / mean y², with weights and activations quantized. */
  quantized: number;
  /** The same with the weights quantized only. */
  weightOnly: number;
  best: boolean;
}

/** The four variants of the site, relative to the output power; the lowest quantized MSE is "best". */
export function mseRows(r: ReassemblyResult): MseRow[] {
  const rel = (v: number) => (r.outputPower > 0 ? v / r.outputPower : v);
  const rows: Omit<MseRow, 'best'>[] = [
    {
      id: 'none',
      label: 'As is (no reassembly)',
      quantized: r.before.quantizedMse,
      weightOnly: r.before.weightOnlyMse,
    },
    {
      id: 'reassembled',
      label: r.threshold === null ? 'Reassembled (nothing to reassemble)' : 'Reassembled',
      quantized: r.after.quantizedMse,
      weightOnly: r.after.weightOnlyMse,
    },
    {
      id: 'l2qer',
      label: `L²QER rank ${r.l2qer.rank} (A/B ${r.l2qer.factorFormat.toUpperCase()})`,
      quantized: r.l2qer.quantizedMse,
      weightOnly: r.l2qer.weightOnlyMse,
    },
    {
      id: 'both',
      label: `Reassembled + L²QER rank ${r.l2qer.rank}`,
      quantized: r.reassembledL2qer.quantizedMse,
      weightOnly: r.reassembledL2qer.weightOnlyMse,
    },
  ].map((row) => ({ ...row, quantized: rel(row.quantized), weightOnly: rel(row.weightOnly) })) as Omit<
    MseRow,
    'best'
  >[];
  const best = Math.min(...rows.map((row) => row.quantized).filter(Number.isFinite));
  return rows.map((row) => ({ ...row, best: row.quantized === best }));
}

/** "reduces the site's quantized output MSE by 38.2 %" or why not. */
export function verdict(r: ReassemblyResult): string {
  if (r.threshold === null)
    return 'No channel stands out at any θ the search tried: nothing to reassemble on this site.';
  const before = r.before.quantizedMse;
  const after = r.after.quantizedMse;
  const change = before > 0 ? (after - before) / before : 0;
  return r.helps
    ? `Helps: reassembly lowers the site's quantized output MSE by ${(100 * -change).toFixed(1)} %.`
    : `Does not help here: the site's quantized output MSE ${change > 0 ? `rises by ${(100 * change).toFixed(1)} %` : 'does not drop'} with reassembly.`;
}

export interface RangeRow {
  label: string;
  before: number;
  after: number;
}

export function rangeRows(r: ReassemblyResult): RangeRow[] {
  return [
    { label: 'max |x|', before: r.before.range.maxAbs, after: r.after.range.maxAbs },
    {
      label: 'mean per-token range (max − min)',
      before: r.before.range.meanTokenRange,
      after: r.after.range.meanTokenRange,
    },
  ];
}

/** Splits as "channel 7 ×3, channel 68 ×2, …", the largest first, at most `limit`. */
export function splitSummary(r: ReassemblyResult, limit = 8): string {
  const s = [...r.splits].sort((a, b) => b.parts - a.parts || a.channel - b.channel);
  const shown = s.slice(0, limit).map((x) => `channel ${x.channel} ×${x.parts}`);
  return s.length > limit ? `${shown.join(', ')}, … (${s.length} channels)` : shown.join(', ');
}
