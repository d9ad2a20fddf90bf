/**
 * QLLM channel reassembly and fitted step sizes, run from the layer panel on a calibrated fixture
 * (statistics with activation rows for block 0's q/k/v, whose shared input has outlier channels):
 * the site's output MSE with and without reassembly beside L²QER's, and the fitted steps' error
 * before any correction and with L²QER on top, beside the min/max steps'.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { Frame } from 'playwright-core';
import { analysisFixture, writeAnalysisFixtures } from '../lib/analysisFixtures';
import { scrollTo, setCalibrationFile } from '../lib/sectionUi';
import { e2eEnv } from '../lib/env';
import {
  LayerPanel,
  Overview,
  chooseOption,
  clearCalibrationFromPalette,
  screenshot,
  showExplorer,
  ui,
} from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT, type Workbench } from '../lib/workbench';

const SUITE = 'reassembly-step-fit';
writeAnalysisFixtures(e2eEnv().workspace);

const LAYER = analysisFixture.siteLayers[0];

/** Opens the calibrated overview and the layer panel of block 0's q_proj from its table. */
async function openLayer(wb: Workbench, env: ReturnType<typeof e2eEnv>): Promise<LayerPanel> {
  await showExplorer(wb);
  await setCalibrationFile(wb, env, analysisFixture.samples);
  await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
  const overview = await Overview.of(wb, ui.fileName);
  await overview.frame
    .locator('#calibration', { hasText: 'stats-samples.safetensors' })
    .waitFor({ timeout: TIMEOUT.webview });
  await overview.frame.locator(`table.layers tbody tr[data-name="${LAYER}"]`).click();
  const panel = await LayerPanel.of(wb, LAYER);
  await panel.waitForAnalysis();
  return panel;
}

/** "1.234e-3" or "12.34 %" → a number (percentages as fractions). */
function numberOf(text: string): number {
  const t = text.trim();
  return t.endsWith('%') ? Number(t.replace(/\s*%$/, '')) / 100 : Number(t);
}

async function cells(frame: Frame, row: string): Promise<string[]> {
  return frame.locator(`${row} td`).allInnerTexts();
}

describe('Reassembly and fitted step sizes', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('channel reassembly of the q/k/v input, beside L²QER', async (wb, env) => {
    const panel = await openLayer(wb, env);
    const f = panel.frame;
    // Calibrated, the panel's method is L²QER; a result computed before the calibration reached the
    // panel may be drawn first and is replaced, so wait for it rather than read the first one.
    await f.locator('.charts[data-method="l2qer"]').waitFor({ timeout: TIMEOUT.webview });
    await f.locator('#reassembly[data-status="ready"]').waitFor({ timeout: TIMEOUT.webview });
    assert.match(await f.locator('#reassembly-site').innerText(), /shared by .*q_proj.*k_proj.*v_proj/);
    await f.locator('#reassembly-run').click();
    await f.locator('#reassembly-mse tr[data-variant="both"]').waitFor({ timeout: 150_000 });
    const rows: Record<string, { label: string; quantized: number; weightOnly: number }> = {};
    for (const id of ['none', 'reassembled', 'l2qer', 'both']) {
      const [label = '', quantized = '', weightOnly = ''] = await cells(f, `#reassembly-mse tr[data-variant="${id}"]`);
      rows[id] = { label, quantized: numberOf(quantized), weightOnly: numberOf(weightOnly) };
      assert.ok(rows[id].quantized > 0 && Number.isFinite(rows[id].quantized), `${id}: ${quantized}`);
      assert.ok(rows[id].weightOnly > 0 && Number.isFinite(rows[id].weightOnly), `${id}: ${weightOnly}`);
    }
    assert.match(rows.l2qer!.label, /^L²QER rank 32 /);
    // L²QER corrects the weights: with the weights quantized only, the site's output error drops.
    assert.ok(
      rows.l2qer!.weightOnly < rows.none!.weightOnly,
      `L²QER ${rows.l2qer!.weightOnly} < as is ${rows.none!.weightOnly}`,
    );
    assert.match(await f.locator('#reassembly-verdict').innerText(), /^(Helps|Does not help|No channel)/);
    assert.match(await f.locator('#reassembly-facts [data-fact="θ found"]').innerText(), /\S/);
    await scrollTo(f, '#reassembly-mse');
    await screenshot(wb, env, SUITE, 'reassembly-beside-l2qer');
  });

  suite.scenario('fitted step sizes for INT4, before and after L²QER', async (wb, env) => {
    const panel = await openLayer(wb, env);
    const f = panel.frame;
    await chooseOption(f, 'weight-format', 'INT4');
    await f.locator('.charts[data-weight-format^="int4"]').waitFor({ timeout: TIMEOUT.webview * 2 });
    await f.locator('#step-fit:not([hidden])').waitFor({ timeout: TIMEOUT.ui });
    await f.locator('#fitted-steps').click();
    await f.locator('.charts[data-weight-format*="fitted"]').waitFor({ timeout: TIMEOUT.webview * 2 });
    await f.locator('#step-fit-summary tr[data-fit="fitted"]').waitFor({ timeout: TIMEOUT.webview });
    const minmax = numberOf((await cells(f, '#step-fit-summary tr[data-fit="minmax"]'))[1]!);
    const fitted = numberOf((await cells(f, '#step-fit-summary tr[data-fit="fitted"]'))[1]!);
    assert.ok(fitted <= minmax, `fitted ${fitted} ≤ min/max ${minmax} before any correction`);

    // The comparison at rank k, with L²QER on top of each grid, is asked for by itself.
    await f.locator('.step-fit-comparison tr[data-grid="fitted"]').waitFor({ timeout: TIMEOUT.webview * 2 });
    assert.match(await f.locator('.step-fit-comparison thead').innerText(), /\+ L²QER rank 32/);
    for (const grid of ['minmax', 'fitted']) {
      const [, alone = '', , corrected = ''] = await cells(f, `.step-fit-comparison tr[data-grid="${grid}"]`);
      assert.ok(numberOf(corrected) < numberOf(alone), `${grid}: with L²QER ${corrected} below alone ${alone}`);
    }
    const [, fittedAlone = '', change = ''] = await cells(f, '.step-fit-comparison tr[data-grid="fitted"]');
    assert.ok(numberOf(fittedAlone) <= numberOf((await cells(f, '.step-fit-comparison tr[data-grid="minmax"]'))[1]!));
    assert.match(change, /^(−\d+\.\d %|0\.0 %|)$/, `the fitted steps are no worse alone: ${change}`);
    await scrollTo(f, '#step-fit');
    await screenshot(wb, env, SUITE, 'fitted-steps-beside-l2qer');
    await clearCalibrationFromPalette(wb);
  });
});
