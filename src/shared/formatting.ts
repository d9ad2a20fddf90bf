/** Number and name formatting shared by the host (tree, notifications, logs) and the webviews. */

/** "model.layers.0.self_attn.q_proj.weight" → "layers.0.self_attn.q_proj": what titles and lists show. */
export function shortLayerName(name: string): string {
  return name.replace(/^model\./, '').replace(/\.weight$/, '');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** 0.0231 → "2.31 %"; null (not computed, or not finite) → "—". */
export function formatPercent(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(digits)} %`;
}

/** SQNR in dB; null stands for "no error at all" as postMessage turns Infinity into null. */
export function formatDb(v: number | null | undefined): string {
  if (v === undefined) return '—';
  if (v === null || v === Infinity) return '∞';
  return Number.isFinite(v) ? `${v.toFixed(1)} dB` : '—';
}

export function formatBits(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3);
}

/** 65_000 → "1 min 5 s"; 800 → "0.8 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A finite number, or null (what postMessage would make of it anyway, made explicit). */
export function finiteOrNull(v: number | null | undefined): number | null {
  return v === null || v === undefined || !Number.isFinite(v) ? null : v;
}
