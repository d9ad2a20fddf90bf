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

/** Ticks options of a vscode-multi-select (by label) and closes its list. */
export async function tickOptions(frame: Frame, selectId: string, labels: string[]): Promise<void> {
  const select = frame.locator(`#${selectId}`);
  await select.click();
  for (const label of labels) await select.getByRole('option', { name: label, exact: true }).click();
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
