/**
 * The checkpoint comparison in a real workbench: llama-mini against its "fine-tuned" copy, in
 * which two layers got low-rank updates of 5 % and 10 % and one got noise far below the default
 * tolerance. Opened from the explorer's "Compare with…", from the palette's two dialogs, and from
 * a selection of two files; the table, its verdicts at an edited tolerance, the counts, the sort,
 * the spectrum of the selected layer, and the panel coming back after a reload.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe } from 'node:test';
import type { Locator } from 'playwright-core';
import { analysisFixture, writeAnalysisFixtures } from '../lib/analysisFixtures';
import { ComparisonPanel, scrollTo } from '../lib/sectionUi';
import { e2eEnv } from '../lib/env';
import { screenshot, setColorTheme, showExplorer, ui, until, waitForQuantLens } from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT, type Workbench } from '../lib/workbench';

const SUITE = 'checkpoint-comparison';
writeAnalysisFixtures(e2eEnv().workspace);

const [qProj, vProj] = analysisFixture.changed;
const SECOND_DIALOG = 'Quant Lens: compare model.safetensors with…';

/** The verdict of every layer at the default tolerance, from how the fixture was made. */
function expectedVerdict(name: string): string {
  if ((analysisFixture.changed as readonly string[]).includes(name)) return 'changed';
  return name === analysisFixture.nearlySame ? 'unchanged' : 'identical';
}

/** Collapses the fine-tuned copy's folder, so later scenarios find one model.safetensors open. */
async function collapseTunedFolder(wb: Workbench): Promise<void> {
  await wb.dismiss();
  const row = wb.page.locator('.explorer-folders-view .monaco-list-row[aria-label="llama-mini-ft"]');
  if ((await row.count()) && (await row.getAttribute('aria-expanded')) === 'true') await row.click();
}

/**
 * Selects two explorer rows (click, then Ctrl+click). The first click opens the file in an editor,
 * and a Ctrl+click that lands while the explorer re-renders for it can be taken as a plain click:
 * repeat until both rows are selected.
 */
async function selectBoth(wb: Workbench, first: Locator, second: Locator): Promise<void> {
  const selected = async (row: Locator) => (await row.getAttribute('aria-selected')) === 'true';
  await until(
    'both checkpoints selected in the explorer',
    async () => {
      if (!(await selected(first))) await first.click();
      else if (!(await selected(second))) await second.click({ modifiers: ['Control'] });
      await wb.page.waitForTimeout(500);
      return (await selected(first)) && (await selected(second));
    },
    TIMEOUT.ui,
  );
}

describe('Checkpoint comparison', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('Compare with…: table, counts, verdicts at an edited tolerance, the spectrum', async (wb, env) => {
    await showExplorer(wb);
    await wb.explorerContextAction(ui.file, 'Compare with…');
    await wb.answerFileDialog(SECOND_DIALOG, join(env.workspace, analysisFixture.tuned));
    const panel = await ComparisonPanel.of(wb);
    const f = panel.frame;
    assert.equal(await f.locator('#path-a').innerText(), join(env.workspace, ui.file));
    assert.equal(await f.locator('#path-b').innerText(), join(env.workspace, analysisFixture.tuned));

    const rows = await panel.rows();
    for (const name of ui.layers)
      assert.ok(
        rows.some((r) => r.name === name),
        `${name} is in the table`,
      );
    for (const r of rows) assert.equal(r.verdict, expectedVerdict(r.name), r.name);
    assert.equal(await panel.count('changed'), 2);
    assert.equal(await panel.count('unchanged'), 1);
    assert.equal(await panel.count('identical'), rows.length - 3);
    // Sorted by ‖ΔW‖/‖W₁‖, largest first: the 10 % update, then the 5 % one.
    assert.deepEqual(
      rows.slice(0, 3).map((r) => [r.name, r.relative]),
      [
        [vProj, '10.0 %'],
        [qProj, '5.00 %'],
        [analysisFixture.nearlySame, rows[2]!.relative],
      ],
    );
    assert.notEqual(rows[2]!.relative, '0', 'the noise is small but not nothing');

    // The chart starts on the most changed layer: a rank-2 update holds 90 % in at most 2 directions.
    let chart = await panel.chart();
    assert.equal(chart.layer, vProj);
    assert.ok(chart.rank90 >= 1 && chart.rank90 <= 2, `rank 90 % of the rank-2 update: ${chart.rank90}`);
    assert.ok(chart.points > 0);
    await scrollTo(f, '#diff-spectrum');
    await wb.screenshot('default-tolerance');

    await panel.select(qProj);
    chart = await panel.chart();
    assert.ok(chart.rank90 >= 1 && chart.rank90 <= 4, `rank 90 % of the rank-4 update: ${chart.rank90}`);
    assert.match(await f.locator('#diff-spectrum-title').innerText(), new RegExp(qProj.replace(/\./g, '\\.')));

    // Sorting by name: numbers in names sort as numbers; a second click reverses.
    await f.locator('th[data-column="name"]').click();
    const byName = (await panel.rows()).map((r) => r.name);
    const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
    assert.deepEqual(byName, [...byName].sort(collator.compare));
    await f.locator('th[data-column="name"]').click();
    assert.deepEqual(
      (await panel.rows()).map((r) => r.name),
      [...byName].reverse(),
    );

    // A tolerance below the noise: the noisy layer counts as changed too.
    await panel.setTolerance('1e-6', 3);
    assert.equal((await panel.rows()).find((r) => r.name === analysisFixture.nearlySame)?.verdict, 'changed');
    // Above the 5 % update, typed as a percentage: only the 10 % one is left.
    await panel.setTolerance('7 %', 1);
    assert.equal(await panel.count('unchanged'), 2);
    const changed = (await panel.rows()).filter((r) => r.verdict === 'changed').map((r) => r.name);
    assert.deepEqual(changed, [vProj]);
    await scrollTo(f, '#counts');
    await screenshot(wb, env, SUITE, 'comparison-at-7-percent');
    await f.locator('#changed-only').click();
    await f.locator('#differences tbody tr').nth(1).waitFor({ state: 'detached', timeout: TIMEOUT.ui });
    assert.deepEqual(
      (await panel.rows()).map((r) => r.name),
      [vProj],
    );
  });

  suite.scenario(
    'Compare Checkpoints… from the palette, and back after a reload with its tolerance',
    async (wb, env) => {
      await waitForQuantLens(wb);
      await wb.runCommand('Quant Lens: Compare Checkpoints…');
      await wb.answerFileDialog('Quant Lens: choose the first checkpoint (W₁)', join(env.workspace, ui.file));
      await wb.answerFileDialog(SECOND_DIALOG, join(env.workspace, analysisFixture.tuned));
      const panel = await ComparisonPanel.of(wb);
      assert.equal(await panel.count('changed'), 2);
      await panel.setTolerance('0.07', 1);
      await wb.page.waitForTimeout(600); // setState reaches the workbench asynchronously
      const reloaded = wb.page.waitForEvent('load', { timeout: TIMEOUT.workbench });
      await wb.runCommand('Developer: Reload Window');
      await reloaded;
      await wb.page.locator('.monaco-workbench').waitFor({ timeout: TIMEOUT.workbench });
      const revived = await ComparisonPanel.of(wb, TIMEOUT.webview * 3);
      assert.equal(await revived.frame.locator('#tolerance input').inputValue(), '0.07');
      assert.equal(await revived.count('changed'), 1);
      assert.equal(await revived.count('unchanged'), 2);
    },
  );

  suite.scenario('two checkpoints selected in the explorer, in the light theme', async (wb, env) => {
    await showExplorer(wb);
    try {
      const first = await wb.revealInExplorer(ui.file);
      const second = await wb.revealInExplorer(analysisFixture.tuned);
      await selectBoth(wb, first, second);
      await second.click({ button: 'right' });
      const entry = wb.page.locator('.context-view .action-label', { hasText: 'Compare Checkpoints…' }).first();
      await entry.waitFor({ timeout: TIMEOUT.ui });
      assert.equal(
        await wb.page.locator('.context-view .action-label', { hasText: 'Compare with…' }).count(),
        0,
        'a multiple selection offers the comparison of the selected files, not a dialog',
      );
      await wb.clickContextMenuEntry('Compare Checkpoints…');
      const panel = await ComparisonPanel.of(wb);
      const paths = [
        await panel.frame.locator('#path-a').innerText(),
        await panel.frame.locator('#path-b').innerText(),
      ];
      assert.deepEqual(paths.sort(), [join(env.workspace, ui.file), join(env.workspace, analysisFixture.tuned)].sort());
      assert.equal(await panel.count('changed'), 2);
      await setColorTheme(wb, 'Light Modern');
      await panel.frame.locator('body.vscode-light').waitFor({ timeout: TIMEOUT.ui });
      await scrollTo(panel.frame, '#diff-spectrum');
      await screenshot(wb, env, SUITE, 'light-comparison');
      await setColorTheme(wb, 'Dark Modern');
      await panel.frame.locator('body.vscode-dark').waitFor({ timeout: TIMEOUT.ui });
    } finally {
      await collapseTunedFolder(wb);
    }
  });
});
