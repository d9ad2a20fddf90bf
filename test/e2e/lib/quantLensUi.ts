/**
 * Fixtures and page objects for the scenarios of the extension's own UI (overview editor, Layers
 * tree, layer panel, palette commands). The checkpoint here is big enough for the spectra and the
 * heatmap to mean something and for "Analyze All" to take long enough to cancel, yet small enough
 * to analyse in seconds: a two-block Llama with hidden size 256, plus calibration statistics with
 * outlier channels (a Gram matrix for one layer only, so QERA-exact is available there alone).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame, Locator } from 'playwright-core';
import { f32Tensor, writeSafetensors, type TestTensor } from '../../helpers/safetensorsWriter';
import type { E2eEnv } from './env';
import { TIMEOUT, type Workbench } from './workbench';

const HIDDEN = 256;
const INTERMEDIATE = 512;
const BLOCKS = 2;
const VOCAB = 128;

const ATTENTION = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
const MLP = ['gate_proj', 'up_proj', 'down_proj'] as const;

function shapeOf(role: string): [number, number] {
  if (role === 'gate_proj' || role === 'up_proj') return [INTERMEDIATE, HIDDEN];
  if (role === 'down_proj') return [HIDDEN, INTERMEDIATE];
  return [HIDDEN, HIDDEN];
}

function layerName(block: number, role: string): string {
  const part = (ATTENTION as readonly string[]).includes(role) ? 'self_attn' : 'mlp';
  return `model.layers.${block}.${part}.${role}.weight`;
}

export const ui = {
  folder: 'quant-lens-ui/llama-mini',
  file: 'quant-lens-ui/llama-mini/model.safetensors',
  fileName: 'model.safetensors',
  stats: 'quant-lens-ui/llama-mini/stats.safetensors',
  /** Not a GGUF file at all: the default editor for *.gguf must say what is wrong. */
  badGguf: 'quant-lens-ui/not-a-model.gguf',
  layers: Array.from({ length: BLOCKS }, (_, b) => [...ATTENTION, ...MLP].map((r) => layerName(b, r))).flat(),
  /** The one layer whose statistics include the Gram matrix. */
  gramLayer: layerName(0, 'q_proj'),
  layer: (block: number, role: string) => layerName(block, role),
} as const;

/** Deterministic normal samples (Box–Muller on a 32-bit LCG). */
function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** Writes the UI fixtures into the workspace (once per run; the files are deterministic). */
export function writeUiFixtures(workspace: string): void {
  const folder = join(workspace, ui.folder);
  if (existsSync(join(workspace, ui.file))) return;
  mkdirSync(folder, { recursive: true });
  const g = gaussian(1234);
  const tensors: TestTensor[] = [];
  const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => scale * g());
  tensors.push(f32Tensor('model.embed_tokens.weight', [VOCAB, HIDDEN], random(VOCAB * HIDDEN, 0.02)));
  const stats: TestTensor[] = [];
  const tokens: Record<string, number> = {};
  for (let b = 0; b < BLOCKS; b++) {
    for (const role of [...ATTENTION, ...MLP]) {
      const [out, inF] = shapeOf(role);
      const name = layerName(b, role);
      // Later blocks and the MLP get larger weights, so the heatmap has something to show.
      const w = random(out * inF, 0.02 * (1 + b) * ((MLP as readonly string[]).includes(role) ? 1.5 : 1));
      tensors.push(f32Tensor(name, [out, inF], w));
      const meanAbs = Float32Array.from(
        { length: inF },
        (_, i) => (i % 61 === 7 ? 25 : 1) * (0.4 + 0.2 * Math.abs(g())),
      );
      stats.push(f32Tensor(`${name}.act_mean_abs`, [inF], meanAbs));
      stats.push(
        f32Tensor(
          `${name}.act_rms`,
          [inF],
          meanAbs.map((v) => 1.3 * v),
        ),
      );
      if (name === ui.gramLayer) {
        const gram = new Float32Array(inF * inF);
        for (let i = 0; i < inF; i++) gram[i * inF + i] = (1.3 * meanAbs[i]!) ** 2;
        stats.push(f32Tensor(`${name}.act_gram`, [inF, inF], gram));
      }
      tokens[name] = 2048;
    }
    tensors.push(f32Tensor(`model.layers.${b}.input_layernorm.weight`, [HIDDEN], new Float32Array(HIDDEN).fill(1)));
  }
  tensors.push(f32Tensor('model.norm.weight', [HIDDEN], new Float32Array(HIDDEN).fill(1)));
  tensors.push(f32Tensor('lm_head.weight', [VOCAB, HIDDEN], random(VOCAB * HIDDEN, 0.02)));
  writeSafetensors(join(workspace, ui.file), tensors, { format: 'pt' });
  writeFileSync(
    join(folder, 'config.json'),
    JSON.stringify(
      {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        hidden_size: HIDDEN,
        intermediate_size: INTERMEDIATE,
        num_hidden_layers: BLOCKS,
        // What a GGUF export needs for its llama.* keys.
        num_attention_heads: 4,
        num_key_value_heads: 4,
        vocab_size: VOCAB,
        max_position_embeddings: 128,
        rms_norm_eps: 1e-5,
      },
      null,
      2,
    ),
  );
  writeSafetensors(join(workspace, ui.stats), stats, {
    format: 'quant-lens-stats',
    version: '1',
    tokens: JSON.stringify(tokens),
  });
  writeFileSync(join(workspace, ui.badGguf), 'This is a text file with a .gguf name.\n');
}

/** A screenshot in the suite's folder beside the ones the suite takes after each scenario. */
export async function screenshot(wb: Workbench, env: E2eEnv, suite: string, name: string): Promise<string> {
  const dir = join(env.screenshotsDir, suite);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await wb.page.screenshot({ path });
  return path;
}

/** Picks an entry of a vscode-single-select inside a webview, as a user does: open it, click the option. */
export async function chooseOption(frame: Frame, selectId: string, label: string): Promise<void> {
  const select = frame.locator(`#${selectId}`);
  await select.click();
  await select.getByRole('option', { name: label, exact: true }).click();
}

/** The checkpoint overview (webview/overview.entry.ts) of the UI fixture. */
export class Overview {
  private constructor(readonly frame: Frame) {}

  static async of(wb: Workbench, fileName: string): Promise<Overview> {
    const frame = await wb.webviewFrame('table.layers', {});
    await frame.locator('h1', { hasText: fileName }).waitFor({ timeout: TIMEOUT.webview });
    await frame.locator('table.layers tbody tr').first().waitFor({ timeout: TIMEOUT.webview });
    return new Overview(frame);
  }

  async click(buttonId: string): Promise<void> {
    await this.frame.locator(`#${buttonId}`).click();
  }

  progress(): Locator {
    return this.frame.locator('#progress-text');
  }

  async analysedCount(): Promise<number> {
    const text = await this.frame.locator('#layer-count').innerText();
    const m = /(\d+) analysed/.exec(text);
    return m ? Number(m[1]) : 0;
  }

  /** Waits until `predicate` holds for the progress line's text. */
  async waitForProgress(predicate: RegExp, timeout: number = TIMEOUT.webview * 3): Promise<string> {
    await this.progress().filter({ hasText: predicate }).waitFor({ timeout });
    return this.progress().innerText();
  }
}

/** The layer inspection panel (webview/layer.entry.ts). */
export class LayerPanel {
  private constructor(readonly frame: Frame) {}

  static async of(wb: Workbench, layer: string, timeout: number = TIMEOUT.webview * 2): Promise<LayerPanel> {
    const frame = await wb.webviewFrame('#layer-name', { hasText: layer, timeout });
    return new LayerPanel(frame);
  }

  /**
   * Waits for the analysis with `weightFormat` (engine string, e.g. 'mxint4') to be on screen,
   * complete (a progressive analysis shows first numbers before; `partial` waits for those).
   */
  async waitForAnalysis(
    weightFormat?: string,
    timeout: number = TIMEOUT.webview * 3,
    stage: 'complete' | 'partial' = 'complete',
  ): Promise<void> {
    const format = weightFormat ? `[data-weight-format="${weightFormat}"]` : '[data-weight-format]';
    const coming = stage === 'complete' ? '[data-coming=""]' : ':not([data-coming=""])';
    await this.frame.locator(`.charts${format}${coming}`).waitFor({ timeout });
  }

  /** The spectra chart's account of a partial spectrum ("top 64 of 2048"), or '' when complete. */
  async partialSpectrum(): Promise<string> {
    return (await this.frame.locator('#spectra-chart').getAttribute('data-partial')) ?? '';
  }

  async metric(key: string): Promise<string> {
    return (await this.frame.locator(`[data-metric="${key}"]`).innerText()).trim();
  }

  /** Points drawn per dataset, as the chart reports them ("256,256"). */
  async chartPoints(canvasId: string): Promise<number[]> {
    const v = (await this.frame.locator(`#${canvasId}`).getAttribute('data-points')) ?? '';
    return v ? v.split(',').map(Number) : [];
  }

  async pressOnSlider(key: string, times = 1): Promise<void> {
    const slider = this.frame.locator('#rank-slider');
    await slider.focus();
    for (let i = 0; i < times; i++) await slider.press(key);
  }
}

/**
 * Waits until the workbench knows the extension's contributions (its activity-bar entry is the
 * sign): right after a load, the palette can be asked before they arrive and find nothing.
 */
export async function waitForQuantLens(wb: Workbench): Promise<void> {
  await wb.page.locator('.activitybar [aria-label^="Quant Lens"]').first().waitFor({ timeout: TIMEOUT.webview });
}

/**
 * Brings the Explorer back into the side bar. The workbench remembers the active view container
 * across reloads and suites, and the shared helpers look for files in the Explorer.
 */
export async function showExplorer(wb: Workbench): Promise<void> {
  await waitForQuantLens(wb);
  const explorer = wb.page.locator('.explorer-folders-view');
  // Under load a click on the activity bar is sometimes lost (the side bar keeps its view): retry.
  for (let i = 0; i < 3 && !(await explorer.isVisible()); i++) {
    await wb.page.locator('.activitybar [aria-label^="Explorer"]').first().click();
    await explorer.waitFor({ timeout: TIMEOUT.ui / 3 }).catch(() => undefined);
  }
  await explorer.waitFor({ timeout: TIMEOUT.ui });
}

/** Opens the Quant Lens view container in the activity bar and waits for the Layers tree. */
export async function showLayersView(wb: Workbench): Promise<Locator> {
  await wb.page.locator('.activitybar [aria-label^="Quant Lens"]').first().click();
  const tree = wb.page.locator('.pane', { has: wb.page.locator('.pane-header', { hasText: 'Layers' }) });
  await tree.waitFor({ timeout: TIMEOUT.ui });
  return tree;
}

/** Answers the browser workbench's simple save dialog with an absolute path. */
export async function answerSaveDialog(wb: Workbench, expectedTitle: string, absolutePath: string): Promise<void> {
  const dialog = wb.page.locator('.quick-input-widget');
  await dialog.locator('.quick-input-title', { hasText: expectedTitle }).waitFor({ timeout: TIMEOUT.ui });
  await dialog.locator('.monaco-list-row').first().waitFor({ timeout: TIMEOUT.ui });
  const input = dialog.locator('input');
  await input.fill(absolutePath);
  await wb.page.waitForTimeout(300);
  if ((await input.inputValue()) !== absolutePath) await input.fill(absolutePath);
  await input.press('Enter');
  await dialog.waitFor({ state: 'hidden', timeout: TIMEOUT.ui });
}

/** Switches the workbench's colour theme through the palette ("Dark Modern", "Light Modern"). */
export async function setColorTheme(wb: Workbench, theme: string): Promise<void> {
  await wb.runCommand('Preferences: Color Theme');
  const dialog = wb.page.locator('.quick-input-widget');
  const input = dialog.locator('input');
  await input.waitFor({ timeout: TIMEOUT.ui });
  await input.fill(theme);
  await dialog.locator('.monaco-list-row', { hasText: theme }).first().waitFor({ timeout: TIMEOUT.ui });
  await input.press('Enter');
  await dialog.waitFor({ state: 'hidden', timeout: TIMEOUT.ui });
}

/** Labels the command palette offers for a query (the palette is closed again). */
export async function paletteEntries(wb: Workbench, query: string): Promise<string[]> {
  await wb.page.locator('.part.sidebar .composite.title').click();
  await wb.page.keyboard.press('Control+Shift+P');
  const dialog = wb.page.locator('.quick-input-widget');
  const input = dialog.locator('input');
  await input.waitFor({ timeout: TIMEOUT.ui });
  await input.fill(`>${query}`);
  // The palette fills its list asynchronously: wait for a first match, then for the list to settle.
  await dialog.locator('.monaco-list-row', { hasText: query }).first().waitFor({ timeout: TIMEOUT.ui });
  await wb.page.waitForTimeout(500);
  const rows = (await dialog.locator('.monaco-list-row .label-name').allInnerTexts()).map((t) => t.trim());
  await wb.dismiss();
  return rows;
}

/** "Quant Lens: Set Calibration…" → "Statistics file…" → the UI fixture's statistics. */
export async function setCalibrationFromPalette(wb: Workbench, env: E2eEnv): Promise<void> {
  await waitForQuantLens(wb);
  await wb.runCommand('Quant Lens: Set Calibration…');
  const dialog = wb.page.locator('.quick-input-widget');
  await dialog.locator('.monaco-list-row', { hasText: 'Statistics file…' }).first().click();
  await wb.answerFileDialog('Quant Lens: choose a calibration statistics file', join(env.workspace, ui.stats));
}

/** "Quant Lens: Set Calibration…" → "No calibration" (only offered while one is set). */
export async function clearCalibrationFromPalette(wb: Workbench): Promise<void> {
  await wb.runCommand('Quant Lens: Set Calibration…');
  const dialog = wb.page.locator('.quick-input-widget');
  const none = dialog.locator('.monaco-list-row', { hasText: 'No calibration' });
  // Wait for this pick's own rows: the command palette's rows may still be there while it closes,
  // and an Escape sent then is lost, leaving the calibration pick open.
  await dialog.locator('.monaco-list-row', { hasText: 'Statistics file…' }).first().waitFor({ timeout: TIMEOUT.ui });
  if ((await none.count()) > 0) await none.first().click();
  else await wb.dismiss();
  await dialog.waitFor({ state: 'hidden', timeout: TIMEOUT.ui });
}

/**
 * "Quant Lens: Inspect Layer…" and its layer picker, open and ready for a query. A quick pick
 * closes when it loses focus, and a webview that has just finished rendering can take the focus
 * back as the picker opens: then the command is run again (at most three times).
 */
export async function openLayerPicker(wb: Workbench): Promise<Locator> {
  for (let attempt = 1; ; attempt++) {
    await wb.runCommand('Quant Lens: Inspect Layer…');
    const picker = wb.quickInput();
    try {
      await picker.locator('input[placeholder^="Type to search the layers"]').waitFor({ timeout: 5000 });
      return picker;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

/** Polls until `check` holds (for state the page has no event for, like a quick pick's item count). */
export async function until(what: string, check: () => Promise<boolean>, timeout: number = TIMEOUT.ui): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Export Report warns, in a modal dialog, when some layers are not analysed (one of the tiny
 * fixture's layers is all zeros and fails): answer it with "Report Analysed Layers Only".
 */
export async function acceptPartialReport(wb: Workbench, saveTitle: string): Promise<void> {
  const save = wb.page.locator('.quick-input-widget .quick-input-title', { hasText: saveTitle });
  const partial = wb.page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Report Analysed Layers Only' });
  await save.or(partial).first().waitFor({ timeout: TIMEOUT.ui });
  if (await partial.isVisible()) await partial.click();
}

/** Waits for a file the extension writes. */
export async function waitForFile(path: string, timeout: number = TIMEOUT.webview): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} was not written within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Export Quantized Checkpoint's target picker (already opened by a command or button): reads the
 * targets offered and the placeholder naming the others, picks `label`, answers the save dialog
 * with `out` and waits for the done notification and the file. Returns what was offered.
 */
export async function exportThroughPicker(
  wb: Workbench,
  label: string,
  out: string,
  o: { folder?: boolean; title?: string } = {},
): Promise<{ offered: string[]; placeholder: string }> {
  const dialog = wb.page.locator('.quick-input-widget');
  await dialog.locator('.quick-input-title', { hasText: o.title ?? 'for…' }).waitFor({ timeout: TIMEOUT.webview });
  await dialog.locator('.monaco-list-row').first().waitFor({ timeout: TIMEOUT.ui });
  // The list fills in asynchronously: let it settle before reading it.
  await wb.page.waitForTimeout(500);
  // The first label of each row (its detail line is a label too).
  const rows = dialog.locator('.monaco-list-row');
  const offered: string[] = [];
  for (let i = 0; i < (await rows.count()); i++)
    offered.push((await rows.nth(i).locator('.label-name').first().innerText()).trim());
  const placeholder = (await dialog.locator('input').getAttribute('placeholder')) ?? '';
  await dialog.locator('.monaco-list-row', { hasText: label }).first().click();
  await answerSaveDialog(
    wb,
    o.folder ? `Quant Lens: the folder to write the ${label} into` : `Quant Lens: export the ${label}`,
    out,
  );
  await wb.page.locator('.notifications-toasts', { hasText: `(${label},` }).waitFor({ timeout: TIMEOUT.webview * 2 });
  await waitForFile(out, TIMEOUT.webview * 2);
  return { offered, placeholder };
}
