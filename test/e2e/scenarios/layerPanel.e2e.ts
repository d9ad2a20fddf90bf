/**
 * The layer inspection panel in a real workbench: opened from the Layers tree, both spectra drawn,
 * the rank slider updating the metrics, a format change recomputing the spectrum, and the panel
 * coming back after a reload.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { e2eEnv } from '../lib/env';
import {
  LayerPanel,
  Overview,
  chooseOption,
  screenshot,
  showExplorer,
  showLayersView,
  ui,
  writeUiFixtures,
} from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT, type Workbench } from '../lib/workbench';

const SUITE = 'layer-panel';
writeUiFixtures(e2eEnv().workspace);

const LAYER = ui.layer(1, 'up_proj');

/** Opens the overview (which makes the checkpoint the tree's), then the layer from the tree. */
async function openFromTree(wb: Workbench, block: number, label: string, layer: string): Promise<LayerPanel> {
  await showExplorer(wb);
  await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
  await Overview.of(wb, ui.fileName);
  const tree = await showLayersView(wb);
  const blockRow = tree.locator('.monaco-list-row', { hasText: `Block ${block}` }).first();
  await blockRow.waitFor({ timeout: TIMEOUT.ui });
  if ((await blockRow.getAttribute('aria-expanded')) !== 'true') await blockRow.click();
  const row = tree.locator(`.monaco-list-row[aria-label^="${layer},"]`);
  await row.waitFor({ timeout: TIMEOUT.ui });
  assert.match(await row.innerText(), new RegExp(label.replace('.', '\\.')));
  assert.match(await row.innerText(), /\d+×\d+/, 'the tree shows each layer with its shape');
  await row.click();
  const panel = await LayerPanel.of(wb, layer);
  await panel.waitForAnalysis();
  await showExplorer(wb);
  return panel;
}

describe('Layer panel', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('a layer opened from the Layers tree draws both spectra', async (wb) => {
    const panel = await openFromTree(wb, 1, 'mlp.up_proj', LAYER);
    const [plain = 0, scaled = 0] = await panel.chartPoints('spectra-chart');
    // min(out, in) = 256 singular values each, before and after scaling.
    assert.equal(plain, 256);
    assert.equal(scaled, 256);
    const energy = await panel.chartPoints('energy-chart');
    assert.ok(energy.length >= 2 && energy.every((n) => n > 0), `energy chart: ${energy.join(',')}`);
    assert.equal(await panel.metric('rank'), '32');
    assert.match(await panel.metric('weightError'), /^\d+\.\d+ % \(RTN \d+\.\d+ %\)$/);
    // After the analysis, the tree shows the layer's error as its description.
    const tree = await showLayersView(wb);
    await tree.locator(`.monaco-list-row[aria-label^="${LAYER},"]`, { hasText: '%' }).waitFor({ timeout: TIMEOUT.ui });
    await showExplorer(wb);
  });

  suite.scenario('moving the rank slider changes the metrics at once', async (wb, env) => {
    const panel = await openFromTree(wb, 1, 'mlp.up_proj', LAYER);
    const before = { error: await panel.metric('weightError'), bits: await panel.metric('bits') };
    await panel.pressOnSlider('ArrowRight', 8);
    assert.equal(await panel.metric('rank'), '40');
    await panel.pressOnSlider('End');
    assert.equal(await panel.metric('rank'), '256');
    const after = { error: await panel.metric('weightError'), bits: await panel.metric('bits') };
    assert.notEqual(after.error, before.error);
    assert.notEqual(after.bits, before.bits);
    await panel.pressOnSlider('Home');
    assert.match(await panel.metric('recovered'), /^0\.0 %/);
    // Keyboard steps from the number field too.
    await panel.frame.locator('#rank-input input').fill('64');
    await panel.frame.locator('#rank-input input').press('Enter');
    assert.equal(await panel.metric('rank'), '64');
    assert.equal(await panel.frame.locator('#rank-slider').inputValue(), '64');
    await screenshot(wb, env, SUITE, 'slider-at-64');
  });

  suite.scenario('a format change recomputes the spectrum and keeps the old one until then', async (wb) => {
    const panel = await openFromTree(wb, 1, 'mlp.up_proj', LAYER);
    await panel.waitForAnalysis('mxint4');
    const before = await panel.metric('weightError');
    await chooseOption(panel.frame, 'weight-format', 'MXINT3');
    // Until the new analysis arrives the old charts stay, marked as stale, with progress shown.
    await panel.waitForAnalysis('mxint3');
    assert.match(await panel.frame.locator('#status').innerText(), /MXINT3/);
    assert.notEqual(await panel.metric('weightError'), before);
    assert.deepEqual(await panel.chartPoints('spectra-chart'), [256, 256]);
    await chooseOption(panel.frame, 'block-size', '64');
    await panel.waitForAnalysis('mxint3:block=64');
  });

  suite.scenario('the panel comes back after a window reload with its rank', async (wb) => {
    const panel = await openFromTree(wb, 0, 'self_attn.q_proj', ui.layer(0, 'q_proj'));
    await panel.pressOnSlider('ArrowLeft', 15);
    assert.equal(await panel.metric('rank'), '17');
    await wb.page.waitForTimeout(600); // the panel saves its state once the slider rests
    // "Developer: Reload Window", as a user reloads: the workbench saves its state on the way out.
    const reloaded = wb.page.waitForEvent('load', { timeout: TIMEOUT.workbench });
    await wb.runCommand('Developer: Reload Window');
    await reloaded;
    await wb.page.locator('.monaco-workbench').waitFor({ timeout: TIMEOUT.workbench });
    const revived = await LayerPanel.of(wb, ui.layer(0, 'q_proj'), TIMEOUT.webview * 3);
    await revived.waitForAnalysis();
    assert.equal(await revived.metric('rank'), '17');
  });
});
