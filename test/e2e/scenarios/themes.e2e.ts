/**
 * The overview and the layer panel in a dark and a light theme: screenshots of both, and checks
 * that the webviews follow the switch (their colours come from the theme's variables, and the
 * charts re-read them).
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { Frame } from 'playwright-core';
import { e2eEnv } from '../lib/env';
import {
  LayerPanel,
  openLayerPicker,
  Overview,
  screenshot,
  setCalibrationFromPalette,
  setColorTheme,
  showExplorer,
  ui,
  writeUiFixtures,
} from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT, type Workbench } from '../lib/workbench';

const SUITE = 'themes';
writeUiFixtures(e2eEnv().workspace);

const background = async (frame: Frame) =>
  await frame.evaluate<string>('getComputedStyle(document.body).backgroundColor');

/** Relative luminance of "rgb(r, g, b)", 0 (black) … 1 (white). */
function luminance(rgb: string): number {
  const [r = 0, g = 0, b = 0] = (rgb.match(/\d+(\.\d+)?/g) ?? []).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

async function openBoth(wb: Workbench): Promise<{ overview: Overview; panel: LayerPanel }> {
  await showExplorer(wb);
  await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
  const overview = await Overview.of(wb, ui.fileName);
  await overview.click('analyze-all');
  // A second run finds every layer in the session cache and has nothing to do.
  await overview.frame
    .locator('#layer-count', { hasText: `${ui.layers.length} analysed` })
    .waitFor({ timeout: 150_000 });
  // The job finished (its notification closed): the picker does not open while the workbench still moves.
  await overview.frame.locator('#progress[hidden]').waitFor({ state: 'attached', timeout: TIMEOUT.ui });
  const picker = await openLayerPicker(wb);
  await picker.locator('input').fill('layers.1.mlp.down');
  await picker.locator('.monaco-list-row', { hasText: 'layers.1.mlp.down_proj' }).first().waitFor();
  await picker.locator('input').press('Enter');
  const panel = await LayerPanel.of(wb, ui.layer(1, 'down_proj'));
  await panel.waitForAnalysis();
  return { overview, panel };
}

describe('Themes', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('dark theme: overview and layer panel', async (wb, env) => {
    await showExplorer(wb);
    await setCalibrationFromPalette(wb, env);
    await setColorTheme(wb, 'Dark Modern');
    const { panel } = await openBoth(wb);
    assert.ok(luminance(await background(panel.frame)) < 0.3, 'the layer panel is dark');
    await panel.pressOnSlider('ArrowRight', 16);
    await screenshot(wb, env, SUITE, 'dark-layer-panel');
    // The overview sits in the tab beside the panel: bring it forward for its own screenshot.
    await wb.page.locator('.tabs-container .tab', { hasText: ui.fileName }).first().click();
    const overview = await Overview.of(wb, ui.fileName);
    assert.ok(luminance(await background(overview.frame)) < 0.3, 'the overview is dark');
    await screenshot(wb, env, SUITE, 'dark-overview');
  });

  suite.scenario('light theme: overview and layer panel follow the switch', async (wb, env) => {
    await setColorTheme(wb, 'Dark Modern');
    const { panel } = await openBoth(wb);
    assert.ok(luminance(await background(panel.frame)) < 0.3);
    // Switch while the panel is open: the page's colours and the charts' follow.
    await setColorTheme(wb, 'Light Modern');
    // A locator, not waitForFunction: polling a string predicate needs eval, which the panel's CSP forbids.
    await panel.frame.locator('body.vscode-light').waitFor({ timeout: TIMEOUT.ui });
    assert.ok(luminance(await background(panel.frame)) > 0.7, 'the layer panel is light');
    await panel.pressOnSlider('ArrowRight', 16);
    await screenshot(wb, env, SUITE, 'light-layer-panel');
    await wb.page.locator('.tabs-container .tab', { hasText: ui.fileName }).first().click();
    const overview = await Overview.of(wb, ui.fileName);
    assert.ok(luminance(await background(overview.frame)) > 0.7, 'the overview is light');
    await screenshot(wb, env, SUITE, 'light-overview');
  });
});
