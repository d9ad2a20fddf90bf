/**
 * The options of the layer panel's QLLM channel reassembly, as the user sets them: checked when
 * they come from a webview or a saved state. Defaults are QLLM's scripts' (W4 per output channel,
 * A4 per token, 20 % extra channels) and the L²QER reference at rank 32.
 */
import { MAX_SLIDER_RANK } from './quantSettings';
import type { ReassemblyUiOptions } from './webviewProtocol';

export const REASSEMBLY_BITS = [2, 3, 4, 6, 8] as const;

export const DEFAULT_REASSEMBLY_OPTIONS: ReassemblyUiOptions = {
  weightBits: 4,
  actBits: 4,
  channelRatio: 0.2,
  rank: 32,
};

function bits(v: unknown, fallback: number): number {
  return typeof v === 'number' && (REASSEMBLY_BITS as readonly number[]).includes(v) ? v : fallback;
}

export function sanitizeReassemblyOptions(
  value: unknown,
  fallback: ReassemblyUiOptions = DEFAULT_REASSEMBLY_OPTIONS,
): ReassemblyUiOptions {
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const ratio = v.channelRatio;
  const rank = v.rank;
  return {
    weightBits: bits(v.weightBits, fallback.weightBits),
    actBits: bits(v.actBits, fallback.actBits),
    channelRatio:
      typeof ratio === 'number' && Number.isFinite(ratio) && ratio > 0 && ratio <= 1 ? ratio : fallback.channelRatio,
    rank:
      typeof rank === 'number' && Number.isFinite(rank) && rank >= 0
        ? Math.min(MAX_SLIDER_RANK, Math.round(rank))
        : fallback.rank,
  };
}

/** Same run (same numbers)? */
export function sameReassemblyOptions(a: ReassemblyUiOptions, b: ReassemblyUiOptions): boolean {
  return (
    a.weightBits === b.weightBits && a.actBits === b.actBits && a.channelRatio === b.channelRatio && a.rank === b.rank
  );
}
