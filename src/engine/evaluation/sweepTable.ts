/**
 * A sweep as a table like the papers': one row per method and rank, one column per weight format,
 * the float model on top.
 */
import { METHODS } from '../methods/methods';
import type { EvalTask, MetricResult } from './evaluate';
import type { SweepResult } from './sweep';

export const FULL_RANK = 1_000_000_000;

export function metricName(task: EvalTask): string {
  switch (task) {
    case 'cer':
      return 'CER % (lower is better)';
    case 'perplexity':
      return 'perplexity (lower is better)';
    case 'cosine':
      return 'cosine similarity to float (higher is better)';
    case 'kld':
      return 'KL divergence from the float model, nats per token (lower is better)';
  }
}

function formatPerplexity(v: number): string {
  return v >= 1000 ? v.toExponential(2) : v.toFixed(3);
}

/** A KL divergence in nats: enough digits for the small values a good quantization gives. */
export function formatKld(v: number): string {
  return v === 0 ? '0' : v < 1e-4 ? v.toExponential(2) : v.toFixed(Math.max(4, 2 - Math.floor(Math.log10(v)) + 1));
}

export function formatMetric(r: MetricResult | undefined): string {
  if (!r) return '—';
  switch (r.task) {
    case 'cer':
      return (100 * r.value).toFixed(2);
    case 'perplexity':
      return formatPerplexity(r.value);
    case 'cosine':
      return r.value.toFixed(5);
    case 'kld': {
      const k = r.kld;
      if (!k) return formatKld(r.value);
      return `KLD mean ${formatKld(k.mean)}, median ${formatKld(k.median)}, p99 ${formatKld(k.p99)}, p99.9 ${formatKld(k.p999)}, max ${formatKld(k.max)}; same top token ${(100 * k.sameTop).toFixed(2)} %; perplexity ${formatPerplexity(k.perplexity)} (float ${formatPerplexity(k.floatPerplexity)})`;
    }
  }
}

/** The columns of a KL divergence sweep, one row per configuration. */
export function kldRow(r: MetricResult | undefined): string[] {
  const k = r?.kld;
  if (!k) return ['—', '—', '—', '—', '—', '—'];
  return [
    formatPerplexity(k.perplexity),
    formatKld(k.mean),
    formatKld(k.median),
    formatKld(k.p99),
    formatKld(k.p999),
    (100 * k.sameTop).toFixed(2),
  ];
}

export const KLD_COLUMNS = ['PPL', 'KLD mean', 'KLD median', 'KLD p99', 'KLD p99.9', 'same top %'];

export function rankLabel(rank: number): string {
  return rank >= FULL_RANK ? 'full' : rank === 0 ? '—' : String(rank);
}

/** Header and rows for `formatTable` (src/cli/table.ts). */
export function sweepTable(s: SweepResult): { header: string[]; rows: string[][] } {
  if (s.float.task === 'kld') {
    // Several figures per configuration: one row each, formats as rows too.
    return {
      header: ['method', 'rank', 'format', ...KLD_COLUMNS],
      rows: [
        ['float', '—', '—', ...kldRow(s.float)],
        ...s.rows.map((r) => [
          METHODS[r.method].label,
          rankLabel(r.rank),
          r.weightFormat,
          ...(r.skipped ? KLD_COLUMNS.map(() => 'n/a') : kldRow(r.result)),
        ]),
      ],
    };
  }
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
