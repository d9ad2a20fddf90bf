/**
 * Static SVG line charts for self-contained reports (no script, no external resource), with an
 * optional logarithmic y axis and vertical markers. Colours are CSS classes so a report can theme them.
 */

export interface Series {
  label: string;
  /** y values at x = 1, 2, … (or x given explicitly). */
  y: ArrayLike<number>;
  x?: ArrayLike<number>;
  className: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  width?: number;
  height?: number;
  markers?: { x: number; label: string }[];
  /** Draw at most this many points per series (evenly strided), to keep reports small. */
  maxPoints?: number;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

export function lineChartSvg(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 300;
  const m = { l: 62, r: 14, t: 28, b: 42 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const maxPoints = o.maxPoints ?? 600;
  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  const pts = series.map((s) => {
    const n = s.y.length;
    const stride = Math.max(1, Math.ceil(n / maxPoints));
    const p: [number, number][] = [];
    for (let i = 0; i < n; i += stride) {
      const x = s.x ? s.x[i]! : i + 1;
      const y = s.y[i]!;
      if (!Number.isFinite(y) || (o.logY && y <= 0)) continue;
      p.push([x, y]);
    }
    if (n > 0 && (n - 1) % stride !== 0) {
      const x = s.x ? s.x[n - 1]! : n;
      const y = s.y[n - 1]!;
      if (Number.isFinite(y) && !(o.logY && y <= 0)) p.push([x, y]);
    }
    for (const [x, y] of p) {
      xmin = Math.min(xmin, x);
      xmax = Math.max(xmax, x);
      ymin = Math.min(ymin, y);
      ymax = Math.max(ymax, y);
    }
    return p;
  });
  if (!Number.isFinite(xmin)) {
    xmin = 0;
    xmax = 1;
    ymin = o.logY ? 1e-3 : 0;
    ymax = 1;
  }
  if (xmax === xmin) xmax = xmin + 1;
  const ty = (y: number) => (o.logY ? Math.log10(y) : y);
  let y0 = ty(ymin);
  let y1 = ty(ymax);
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const X = (x: number) => m.l + ((x - xmin) / (xmax - xmin)) * pw;
  const Y = (y: number) => m.t + ph - ((ty(y) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
  );
  parts.push(`<text class="title" x="${m.l}" y="18">${esc(o.title)}</text>`);
  parts.push(`<rect class="plot" x="${m.l}" y="${m.t}" width="${pw}" height="${ph}"/>`);
  const yticks = o.logY
    ? Array.from({ length: Math.floor(y1) - Math.ceil(y0) + 1 }, (_, i) => 10 ** (Math.ceil(y0) + i))
    : niceTicks(ymin, ymax, 5);
  for (const v of yticks) {
    const y = Y(v);
    parts.push(`<line class="grid" x1="${m.l}" x2="${m.l + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/>`);
    parts.push(`<text class="tick" x="${m.l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  for (const v of niceTicks(xmin, xmax, 6)) {
    const x = X(v);
    parts.push(`<text class="tick" x="${x.toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  parts.push(`<text class="axis" x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(
    `<text class="axis" transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  for (const mk of o.markers ?? []) {
    if (mk.x < xmin || mk.x > xmax) continue;
    const x = X(mk.x).toFixed(1);
    parts.push(`<line class="marker" x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + ph}"/>`);
    parts.push(`<text class="marker-label" x="${(+x + 4).toFixed(1)}" y="${m.t + 12}">${esc(mk.label)}</text>`);
  }
  series.forEach((s, i) => {
    const p = pts[i]!;
    if (!p.length) return;
    const d = p.map(([x, y], j) => `${j ? 'L' : 'M'}${X(x).toFixed(1)} ${Y(y).toFixed(1)}`).join('');
    parts.push(`<path class="series ${esc(s.className)}" d="${d}"/>`);
    const ly = m.t + 14 + i * 16;
    parts.push(
      `<line class="series ${esc(s.className)}" x1="${m.l + pw - 150}" x2="${m.l + pw - 132}" y1="${ly - 4}" y2="${ly - 4}"/>`,
    );
    parts.push(`<text class="legend" x="${m.l + pw - 126}" y="${ly}">${esc(s.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
