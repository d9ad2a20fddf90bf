/** Reads the checkpoint overview webview (webview/overview.entry.ts) the way a person reads it. */
import type { Frame } from 'playwright-core';
import type { ExpectedTensor } from './fixtures';
import type { Workbench } from './workbench';

export class OverviewPanel {
  private constructor(readonly frame: Frame) {}

  /** Waits for the overview of `fileName` to show its tensor table. */
  static async of(wb: Workbench, fileName: string): Promise<OverviewPanel> {
    const frame = await wb.webviewFrame('h1', { hasText: fileName });
    await frame.locator('table.tensors tbody tr').first().waitFor();
    return new OverviewPanel(frame);
  }

  async title(): Promise<string> {
    return (await this.frame.locator('h1').innerText()).trim();
  }

  /** The facts list as { Format: 'safetensors', Architecture: …, … }. */
  async facts(): Promise<Record<string, string>> {
    const terms = await this.frame.locator('dl.facts dt').allInnerTexts();
    const values = await this.frame.locator('dl.facts dd').allInnerTexts();
    return Object.fromEntries(terms.map((t, i) => [t.trim(), (values[i] ?? '').trim()]));
  }

  private visibleRows() {
    return this.frame.locator('table.tensors tbody tr:not([hidden])');
  }

  /** The rows the table shows (rows hidden by the filter are left out). */
  async visibleTensors(): Promise<ExpectedTensor[]> {
    const rows = await this.visibleRows().all();
    return Promise.all(
      rows.map(async (row) => {
        const [name = '', dtype = '', shape = ''] = await row.locator('td').allInnerTexts();
        return { name, dtype, shape };
      }),
    );
  }

  /** Waits until the table shows exactly `n` rows. */
  async waitForVisibleRows(n: number): Promise<void> {
    await this.visibleRows().nth(n).waitFor({ state: 'detached' });
    if (n > 0)
      await this.visibleRows()
        .nth(n - 1)
        .waitFor();
  }

  async filter(text: string): Promise<void> {
    // vscode-textfield renders its <input> in an open shadow root, which CSS locators pierce.
    await this.frame.locator('#tensor-filter input').fill(text);
  }
}
