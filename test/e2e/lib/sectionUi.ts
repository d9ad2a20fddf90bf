/** Page-object helpers for the rank allocation, reassembly, step fitting and comparison scenarios. */
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import type { E2eEnv } from './env';
import { waitForQuantLens } from './quantLensUi';
import { TIMEOUT, type Workbench } from './workbench';

/** "Quant Lens: Set Calibration…" → "Statistics file…" → a workspace-relative statistics file. */
export async function setCalibrationFile(wb: Workbench, env: E2eEnv, relativePath: string): Promise<void> {
  await waitForQuantLens(wb);
  await wb.runCommand('Quant Lens: Set Calibration…');
  const dialog = wb.quickInput();
  await dialog.locator('.monaco-list-row', { hasText: 'Statistics file…' }).first().click();
  await wb.answerFileDialog('Quant Lens: choose a calibration statistics file', join(env.workspace, relativePath));
}

/** Ticks options of a vscode-multi-select (by label) that are not ticked yet, and closes its list. */
export const tickOptions = (frame: Frame, selectId: string, labels: string[]) =>
  setOptionsTicked(frame, selectId, labels, true);

/** Unticks options of a vscode-multi-select (by label) that are ticked, and closes its list. */
export const untickOptions = (frame: Frame, selectId: string, labels: string[]) =>
  setOptionsTicked(frame, selectId, labels, false);

async function setOptionsTicked(frame: Frame, selectId: string, labels: string[], ticked: boolean): Promise<void> {
  const select = frame.locator(`#${selectId}`);
  await select.click();
  for (const label of labels) {
    // A click toggles: options already as wanted (a choice the overview kept) are left alone.
    const option = select.getByRole('option', { name: label, exact: true });
    if (((await option.getAttribute('aria-selected')) === 'true') !== ticked) await option.click();
  }
  await select.press('Escape');
}

/** Scrolls an element of a webview into view, for a screenshot of it. */
export async function scrollTo(frame: Frame, selector: string): Promise<void> {
  await frame.locator(selector).first().scrollIntoViewIfNeeded({ timeout: TIMEOUT.ui });
}

/** Reads a canvas's data attribute as a list of numbers. */
export async function numbersOf(frame: Frame, selector: string, attribute: string): Promise<number[]> {
  const v = (await frame.locator(selector).getAttribute(attribute)) ?? '';
  return v ? v.split(',').map(Number) : [];
}

export interface DifferenceRow {
  name: string;
  verdict: string;
  relative: string;
}

/** The checkpoint comparison panel (webview/comparison.entry.ts), once its comparison is on screen. */
export class ComparisonPanel {
  private constructor(readonly frame: Frame) {}

  static async of(wb: Workbench, timeout: number = TIMEOUT.webview * 2): Promise<ComparisonPanel> {
    return new ComparisonPanel(await wb.webviewFrame('#counts [data-count]', { timeout }));
  }

  /** The table's rows, in the order shown. */
  async rows(): Promise<DifferenceRow[]> {
    return this.frame.locator('#differences tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        name: tr.getAttribute('data-name') ?? '',
        verdict: tr.getAttribute('data-verdict') ?? '',
        relative: tr.children[2]?.textContent ?? '',
      })),
    );
  }

  /** A summary count: "2 changed" → 2. */
  async count(kind: 'changed' | 'unchanged' | 'identical'): Promise<number> {
    return Number.parseInt(await this.frame.locator(`#counts [data-count="${kind}"]`).innerText(), 10);
  }

  /** Types a tolerance and waits until the counts show `changed` changed layers. */
  async setTolerance(text: string, changed: number): Promise<void> {
    await this.frame.locator('#tolerance input').fill(text);
    await this.frame
      .locator(`#counts [data-count="changed"]`, { hasText: new RegExp(`^${changed} changed`) })
      .waitFor({ timeout: TIMEOUT.ui });
  }

  async chart(): Promise<{ layer: string; rank90: number; points: number }> {
    const c = this.frame.locator('#diff-spectrum');
    return {
      layer: (await c.getAttribute('data-layer')) ?? '',
      rank90: Number(await c.getAttribute('data-rank90')),
      points: Number(await c.getAttribute('data-points')),
    };
  }

  /** Clicks a layer's row and waits for the chart to show it. */
  async select(layer: string): Promise<void> {
    await this.frame.locator(`#differences tbody tr[data-name="${layer}"]`).click();
    await this.frame.locator(`#diff-spectrum[data-layer="${layer}"]`).waitFor({ timeout: TIMEOUT.ui });
  }
}
