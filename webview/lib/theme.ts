/**
 * Colours for canvases from the VS Code theme's CSS variables. Canvases cannot use var(), so the
 * values are read with getComputedStyle, and read again when VS Code switches theme (it changes
 * the body's class: vscode-light, vscode-dark, vscode-high-contrast…).
 */

export interface ThemeColors {
  foreground: string;
  muted: string;
  grid: string;
  background: string;
  font: string;
  /** Series colours, in the order charts use them. */
  series: [string, string, string, string];
  /** Best → worst, for error scales. */
  good: string;
  middle: string;
  bad: string;
  marker: string;
  empty: string;
  focus: string;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

export function readTheme(): ThemeColors {
  return {
    foreground: cssVar('--vscode-foreground', '#cccccc'),
    muted: cssVar('--vscode-descriptionForeground', '#9d9d9d'),
    grid: cssVar('--vscode-editorWidget-border', cssVar('--vscode-panel-border', 'rgba(128,128,128,0.35)')),
    background: cssVar('--vscode-editor-background', '#1e1e1e'),
    font: cssVar('--vscode-font-family', 'sans-serif'),
    series: [
      cssVar('--vscode-charts-blue', '#3794ff'),
      cssVar('--vscode-charts-orange', '#d18616'),
      cssVar('--vscode-charts-green', '#89d185'),
      cssVar('--vscode-charts-purple', '#b180d7'),
    ],
    good: cssVar('--vscode-charts-green', '#89d185'),
    middle: cssVar('--vscode-charts-yellow', '#cca700'),
    bad: cssVar('--vscode-charts-red', '#f14c4c'),
    marker: cssVar('--vscode-editorCursor-foreground', cssVar('--vscode-foreground', '#cccccc')),
    empty: cssVar('--vscode-editorWidget-background', 'rgba(128,128,128,0.15)'),
    focus: cssVar('--vscode-focusBorder', '#0078d4'),
  };
}

/** Calls `onChange` after VS Code switches theme. */
export function watchTheme(onChange: (theme: ThemeColors) => void): void {
  let last = document.body.className;
  new MutationObserver(() => {
    if (document.body.className === last) return;
    last = document.body.className;
    onChange(readTheme());
  }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
}

let probe: CanvasRenderingContext2D | null = null;

/** Any CSS colour as [r, g, b, a] (0–255, alpha 0–1), via the canvas's own colour parser. */
export function parseColor(color: string): [number, number, number, number] {
  probe ??= document.createElement('canvas').getContext('2d');
  if (!probe) return [128, 128, 128, 1];
  probe.fillStyle = '#000000';
  probe.fillStyle = color;
  const v = String(probe.fillStyle);
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(v);
  if (hex) return [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16), parseInt(hex[3]!, 16), 1];
  const rgba = /^rgba?\(([^)]+)\)$/.exec(v);
  if (rgba) {
    const [r = 0, g = 0, b = 0, a = 1] = rgba[1]!.split(',').map((s) => Number(s.trim()));
    return [r, g, b, a];
  }
  return [128, 128, 128, 1];
}

/** good → middle → bad at t = 0 … 0.5 … 1. */
export function errorColor(theme: ThemeColors, t: number): string {
  const [from, to, u] = t < 0.5 ? [theme.good, theme.middle, t * 2] : [theme.middle, theme.bad, (t - 0.5) * 2];
  const a = parseColor(from);
  const b = parseColor(to);
  const mix = (i: number) => Math.round(a[i]! + (b[i]! - a[i]!) * u);
  return `rgb(${mix(0)}, ${mix(1)}, ${mix(2)})`;
}

/** The colour at `alpha` opacity, for fills and dimmed series. */
export function withAlpha(color: string, alpha: number): string {
  const [r, g, b] = parseColor(color);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}
