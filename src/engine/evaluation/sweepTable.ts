/**
 * A sweep as a table like the papers': one row per method and rank, one column per weight format,
 * the float model on top.
 */
import { METHODS } from '../methods/methods';
import type { EvalTask, MetricResult } from './evaluate';
import type { SweepResult } from './sweep';

export const FULL_RANK = 1_000_000_000;

export function metricName(task: EvalTask): string {
  return task === 'cer'
    ? 'CER % (lower is better)'
    : task === 'perplexity'
      ? 'perplexity (lower is better)'
      : 'cosine similarity to float (higher is better)';
}

export function formatMetric(r: MetricResult | undefined): string {
  if (!r) return '—';
  if (r.task === 'cer') return (100 * r.value).toFixed(2);
  if (r.task === 'perplexity') return r.value >= 1000 ? r.value.toExponential(2) : r.value.toFixed(3);
  return r.value.toFixed(5);
}

export function rankLabel(rank: number): string {
  return rank >= FULL_RANK ? 'full' : rank === 0 ? '—' : String(rank);
}

/** Header and rows for `formatTable` (src/cli/table.ts). */
export function sweepTable(s: SweepResult): { header: string[]; rows: string[][] } {
  const formats = [...new Set(s.rows.map((r) => r.weightFormat))];
  const keys: string[] = [];
  const cells = new Map<string, Map<string, string>>();
  for (const r of s.rows) {
    const key = `${METHODS[r.method].label}\u0000${rankLabel(r.rank)}`;
    if (!cells.has(key)) {
      keys.push(key);
      cells.set(key, new Map());
    }
    cells.get(key)!.set(r.weightFormat, r.skipped ? 'n/a' : formatMetric(r.result));
  }
  const header = ['method', 'rank', ...formats];
  const rows = [['float', '—', ...formats.map(() => formatMetric(s.float))]];
  for (const key of keys) {
    const [label, rank] = key.split('\u0000') as [string, string];
    rows.push([label, rank, ...formats.map((f) => cells.get(key)!.get(f) ?? '')]);
  }
  return { header, rows };
}
