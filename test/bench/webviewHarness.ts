/**
 * Runs a Quant Lens webview bundle in Debian's Chromium outside VS Code: a page with the same
 * strict CSP, the bundle and its CSS, a dark or light set of --vscode-* variables, and a stubbed
 * acquireVsCodeApi that records what the webview posts. Messages from the "host" go through
 * window.postMessage, so they arrive as MessageEvents like VS Code's do (typed arrays included).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';

export const repoRoot = resolve(import.meta.dirname, '../..');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Enough of VS Code's Dark Modern / Light Modern variables for the panels to look like they do there. */
const THEMES = {
  dark: {
    '--vscode-font-family': 'system-ui, sans-serif',
    '--vscode-font-size': '13px',
    '--vscode-editor-font-family': 'monospace',
    '--vscode-foreground': '#cccccc',
    '--vscode-descriptionForeground': '#9d9d9d',
    '--vscode-editor-background': '#1f1f1f',
    '--vscode-editorWidget-background': '#202020',
    '--vscode-editorWidget-border': '#313131',
    '--vscode-errorForeground': '#f85149',
    '--vscode-focusBorder': '#0078d4',
    '--vscode-charts-blue': '#3794ff',
    '--vscode-charts-orange': '#d18616',
    '--vscode-charts-green': '#89d185',
    '--vscode-charts-yellow': '#cca700',
    '--vscode-charts-red': '#f14c4c',
    '--vscode-charts-purple': '#b180d7',
    '--vscode-button-background': '#0078d4',
    '--vscode-list-hoverBackground': '#2a2d2e',
  },
  light: {
    '--vscode-font-family': 'system-ui, sans-serif',
    '--vscode-font-size': '13px',
    '--vscode-editor-font-family': 'monospace',
    '--vscode-foreground': '#3b3b3b',
    '--vscode-descriptionForeground': '#3b3b3b',
    '--vscode-editor-background': '#ffffff',
    '--vscode-editorWidget-background': '#f8f8f8',
    '--vscode-editorWidget-border': '#e5e5e5',
    '--vscode-errorForeground': '#f85149',
    '--vscode-focusBorder': '#005fb8',
    '--vscode-charts-blue': '#1a85ff',
    '--vscode-charts-orange': '#d18616',
    '--vscode-charts-green': '#388a34',
    '--vscode-charts-yellow': '#bf8803',
    '--vscode-charts-red': '#e51400',
    '--vscode-charts-purple': '#652d90',
    '--vscode-button-background': '#005fb8',
    '--vscode-list-hoverBackground': '#f2f2f2',
  },
} as const;

export type ThemeName = keyof typeof THEMES;

/** JSON with typed arrays as base64, so a LayerAnalysis survives the trip into the page (and a cache file). */
export function encodeMessage(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Float64Array)
      return { $f64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    if (v instanceof Float32Array)
      return { $f32: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
    return v;
  });
}

export function decodeMessage<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v && typeof v === 'object') {
      const o = v as Record<string, string>;
      if ('$f64' in o) {
        const b = Buffer.from(o.$f64, 'base64');
        return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      }
      if ('$f32' in o) {
        const b = Buffer.from(o.$f32, 'base64');
        return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      }
      if ('$num' in o) return Number(o.$num);
    }
    return v;
  }) as T;
}

/** The page-side decoder, as source (the page has no Buffer). */
const PAGE_DECODER = `
window.__decode = (text) => JSON.parse(text, (_k, v) => {
  if (v && typeof v === 'object') {
    const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
    if ('$f64' in v) return new Float64Array(bytes(v.$f64));
    if ('$f32' in v) return new Float32Array(bytes(v.$f32));
    if ('$num' in v) return Number(v.$num);
  }
  return v;
});
window.__posted = [];
window.__state = undefined;
window.acquireVsCodeApi = () => ({
  postMessage: (m) => window.__posted.push(m),
  getState: () => window.__state,
  setState: (s) => { window.__state = s; },
});
`;

export interface WebviewPage {
  page: Page;
  /** Delivers a host message the way VS Code does: a MessageEvent on window. */
  send(message: unknown): Promise<void>;
  /** Messages the webview posted so far. */
  posted(): Promise<unknown[]>;
  close(): Promise<void>;
}

export interface OpenOptions {
  entry: 'layer' | 'overview';
  theme?: ThemeName;
  viewport?: { width: number; height: number };
  /** Minify like the VSIX build (the default) or not. */
  production?: boolean;
}

export async function openWebview(o: OpenOptions): Promise<WebviewPage> {
  const dir = mkdtempSync(join(tmpdir(), 'quant-lens-webview-'));
  buildSync({
    entryPoints: [join(repoRoot, 'webview', `${o.entry}.entry.ts`)],
    outfile: join(dir, 'bundle.js'),
    bundle: true,
    minify: o.production ?? true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    tsconfig: join(repoRoot, 'webview/tsconfig.json'),
    logLevel: 'error',
  });
  writeFileSync(join(dir, 'stub.js'), PAGE_DECODER);
  const theme = THEMES[o.theme ?? 'dark'];
  const vars = Object.entries(theme)
    .map(([k, v]) => `${k}: ${v};`)
    .join(' ');
  writeFileSync(join(dir, 'theme.css'), `html { ${vars} }`);
  writeFileSync(join(dir, 'webview.css'), readFileSync(join(repoRoot, 'media/webview.css')));
  const csp = "default-src 'none'; img-src file: data:; style-src file:; font-src file:; script-src file:";
  writeFileSync(
    join(dir, 'index.html'),
    `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<link rel="stylesheet" href="theme.css"><link rel="stylesheet" href="webview.css"></head>
<body class="vscode-${o.theme ?? 'dark'}"><div id="app"></div>
<script src="stub.js"></script><script src="bundle.js"></script></body></html>`,
  );
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: process.env.QUANT_LENS_CHROMIUM ?? '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
    });
    const page = await browser.newPage({ viewport: o.viewport ?? { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`file://${join(dir, 'index.html')}`);
    const b = browser;
    return {
      page,
      send: async (message) => {
        await page.evaluate(`window.postMessage(window.__decode(${JSON.stringify(encodeMessage(message))}), '*')`);
      },
      posted: async () => await page.evaluate<unknown[]>('window.__posted'),
      close: async () => {
        await b.close();
        rmSync(dir, { recursive: true, force: true });
        if (problems.length) throw new Error(`the webview reported problems:\n  ${problems.join('\n  ')}`);
      },
    };
  } catch (e) {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
