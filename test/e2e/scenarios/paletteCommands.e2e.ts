/**
 * The "Quant Lens" palette commands in a real workbench: shown only where they make sense, Set
 * Calibration with a statistics file, Inspect Layer with fuzzy search, Compare Methods, Analyze All
 * and both exports.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2eEnv } from '../lib/env';
import { fixtures } from '../lib/fixtures';
import {
  LayerPanel,
  Overview,
  acceptPartialReport,
  answerSaveDialog,
  exportThroughPicker,
  clearCalibrationFromPalette,
  openLayerPicker,
  paletteEntries,
  setCalibrationFromPalette,
  showExplorer,
  ui,
  until,
  waitForFile,
  writeUiFixtures,
} from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT } from '../lib/workbench';

writeUiFixtures(e2eEnv().workspace);

const ALWAYS = ['Quant Lens: Inspect Checkpoint', 'Quant Lens: Set Calibration…'];
const WITH_CHECKPOINT = [
  'Quant Lens: Inspect Layer…',
  'Quant Lens: Analyze All Layers',
  'Quant Lens: Compare Methods',
  'Quant Lens: Export Quantized Checkpoint…',
  'Quant Lens: Export Report…',
];
const NEVER = ['Quant Lens: Open Layer', 'Quant Lens: Sort Layers by Error', 'Quant Lens: Sort Layers by Block'];

describe('Palette commands', () => {
  const suite = workbenchSuite('palette-commands');

  suite.scenario('commands are offered only where they make sense', async (wb, env) => {
    await showExplorer(wb);
    const none = await paletteEntries(wb, 'Quant Lens');
    for (const c of ALWAYS) assert.ok(none.includes(c), `${c} missing: ${none.join(' | ')}`);
    for (const c of [...WITH_CHECKPOINT, ...NEVER, 'Quant Lens: Cancel Running Analysis'])
      assert.ok(!none.includes(c), `${c} offered without a checkpoint`);
    await wb.runCommand('Quant Lens: Inspect Checkpoint');
    await wb.answerFileDialog('Quant Lens: choose a checkpoint', join(env.workspace, fixtures.tiny.path));
    await Overview.of(wb, fixtures.tiny.fileName);
    const open = await paletteEntries(wb, 'Quant Lens');
    for (const c of [...ALWAYS, ...WITH_CHECKPOINT]) assert.ok(open.includes(c), `${c} missing: ${open.join(' | ')}`);
    for (const c of [...NEVER, 'Quant Lens: Cancel Running Analysis']) assert.ok(!open.includes(c), `${c} offered`);
  });

  suite.scenario('Set Calibration, Inspect Layer (fuzzy) and Compare Methods', async (wb, env) => {
    await showExplorer(wb);
    await setCalibrationFromPalette(wb, env);
    await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, ui.fileName);
    await overview.frame
      .locator('#calibration', { hasText: 'stats.safetensors' })
      .waitFor({ timeout: TIMEOUT.webview });
    const picker = await openLayerPicker(wb);
    await picker.locator('input').fill('l0qp');
    await picker
      .locator('.monaco-list-row', { hasText: 'layers.0.self_attn.q_proj' })
      .first()
      .waitFor({ timeout: TIMEOUT.ui });
    // The extension filters on each keystroke: wait for its answer to replace the full list.
    await until(
      'only layers.0.self_attn.q_proj to match "l0qp"',
      async () => (await picker.locator('.monaco-list-row').count()) === 1,
    );
    await picker.locator('input').press('Enter');
    const panel = await LayerPanel.of(wb, ui.gramLayer);
    await panel.waitForAnalysis();
    // Calibrated: L²QER by default, the output error measured, the activation view shown, and
    // QERA-exact available on this layer, whose statistics include the Gram matrix.
    assert.equal(await panel.frame.locator('.charts').getAttribute('data-method'), 'l2qer');
    assert.doesNotMatch(await panel.metric('outputError'), /needs calibration/);
    assert.ok(await panel.frame.locator('#activation').isVisible());
    assert.match(await panel.frame.locator('#activation-caption').innerText(), /channels/);
    assert.equal(await panel.frame.locator('vscode-option[value="qera-exact"]').getAttribute('disabled'), null);
    await wb.runCommand('Quant Lens: Compare Methods');
    const table = panel.frame.locator('.comparison-table');
    await table.waitFor({ timeout: TIMEOUT.webview * 3 });
    const methods = await table
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-method')));
    assert.deepEqual(methods, ['rtn', 'lqer', 'l2qer', 'qera-approx', 'qera-exact']);
    assert.equal(await table.locator('tr.skipped').count(), 0);
    await table.scrollIntoViewIfNeeded(); // for the screenshot
  });

  suite.scenario('Analyze All, Export Report and Export Quantized Checkpoint', async (wb, env) => {
    await showExplorer(wb);
    // The UI fixture's statistics share the tiny model's layer names but not its shapes.
    await clearCalibrationFromPalette(wb);
    await wb.explorerContextAction(fixtures.tiny.path, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, fixtures.tiny.fileName);
    await wb.runCommand('Quant Lens: Analyze All Layers');
    await overview.waitForProgress(/Analysing: done/);
    const report = join(env.workspace, `tiny-report-${Date.now()}.html`);
    await wb.runCommand('Quant Lens: Export Report…');
    await acceptPartialReport(wb, 'Quant Lens: save the analysis report');
    await answerSaveDialog(wb, 'Quant Lens: save the analysis report', report);
    await waitForFile(report);
    const html = readFileSync(report, 'utf8');
    assert.match(html, /<svg/);
    assert.match(html, /q_proj/);
    const out = join(env.workspace, `tiny-quantized-${Date.now()}.safetensors`);
    await wb.runCommand('Quant Lens: Export Quantized Checkpoint…');
    await exportThroughPicker(wb, 'Quant Lens safetensors', out);
    const bytes = readFileSync(out);
    const header = bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8');
    assert.match(header, /lqer_A/);
  });
});
