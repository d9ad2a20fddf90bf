/**
 * The checkpoint overview editor in a real workbench: opened from a folder's context menu, the
 * default editor for a .gguf that is not one, and "Analyze All" with its progress and its cancel.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { e2eEnv } from '../lib/env';
import { Overview, screenshot, showExplorer, ui, writeUiFixtures } from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT } from '../lib/workbench';

const SUITE = 'overview-editor';
writeUiFixtures(e2eEnv().workspace);

describe('Checkpoint overview', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('right-click on a checkpoint folder opens its overview', async (wb) => {
    await showExplorer(wb);
    // Folders are offered the entry once the extension has listed the folders holding checkpoints,
    // which follows its activation; on a loaded machine that can take a while after the first load.
    await wb.explorerContextAction(ui.folder, 'Inspect Checkpoint', TIMEOUT.webview);
    const overview = await Overview.of(wb, ui.fileName);
    const terms = (await overview.frame.locator('dl.facts dt').allInnerTexts()).map((t) => t.trim());
    for (const t of ['Format', 'Architecture', 'Parameters', 'Dtypes', 'Files', 'Linear layers'])
      assert.ok(terms.includes(t), t);
    assert.equal((await overview.frame.locator('dl.facts dd').nth(1).innerText()).trim(), 'LlamaForCausalLM');
    // Every linear layer in the table, the heatmap drawn, the totals computed without any analysis.
    const rows = await overview.frame.locator('table.layers tbody tr td.name').allInnerTexts();
    for (const name of ui.layers) assert.ok(rows.includes(name), `${name} missing from the layer table`);
    assert.ok(await overview.frame.locator('#heatmap').isVisible());
    assert.match(await overview.frame.locator('[data-total="Bits per weight"]').innerText(), /^\d+\.\d{3} /);
    // A custom editor's tab is the file's own (its label shows name and extension apart).
    assert.ok((await wb.page.locator('.tabs-container .tab', { hasText: ui.fileName }).count()) > 0);
  });

  suite.scenario('the layer table sorts and filters', async (wb) => {
    await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, ui.fileName);
    await overview.frame.locator('#layer-filter input').fill('mlp 1');
    await overview.frame.waitForFunction("document.querySelectorAll('table.layers tbody tr').length === 3");
    const names = await overview.frame.locator('table.layers tbody tr td.name').allInnerTexts();
    assert.deepEqual(names.sort(), [ui.layer(1, 'down_proj'), ui.layer(1, 'gate_proj'), ui.layer(1, 'up_proj')].sort());
    await overview.frame.locator('th[data-column="shape"]').click();
    assert.equal(await overview.frame.locator('th[data-column="shape"]').getAttribute('aria-sort'), 'descending');
  });

  suite.scenario('a file that is not a checkpoint opens an editor that says what is wrong', async (wb) => {
    await wb.clickExplorerRow(ui.badGguf, { clickCount: 2 });
    const frame = await wb.webviewFrame('[role=alert]', { timeout: TIMEOUT.webview });
    assert.equal((await frame.locator('h1').innerText()).trim(), 'Cannot open this checkpoint');
    const message = await frame.locator('[role=alert]').innerText();
    assert.match(message, /gguf|magic|not/i, message);
  });

  suite.scenario('Analyze All shows progress with an ETA and Cancel Running Analysis stops it', async (wb, env) => {
    await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, ui.fileName);
    await overview.click('analyze-all');
    // Progress in the overview and in a cancellable notification, with layers done / total and an ETA.
    const running = await overview.waitForProgress(/Analysing: [1-9]\d* \/ \d+ layers.*ETA/);
    assert.match(running, new RegExp(`/ ${ui.layers.length} layers`));
    const toast = wb.page.locator('.notifications-toasts .notification-toast', { hasText: 'Analysing' });
    await toast.waitFor({ timeout: TIMEOUT.ui });
    assert.match(await toast.innerText(), /ETA/);
    await screenshot(wb, env, SUITE, 'analyse-all-running');
    await wb.runCommand('Quant Lens: Cancel Running Analysis');
    const stopped = await overview.waitForProgress(/stopped at/);
    const m = /stopped at (\d+) \/ (\d+)/.exec(stopped);
    assert.ok(m && Number(m[1]) < Number(m[2]), stopped);
    // The layers analysed before the cancel keep their results.
    assert.ok((await overview.analysedCount()) >= 1);
    await toast.waitFor({ state: 'hidden', timeout: TIMEOUT.ui });
  });
});
