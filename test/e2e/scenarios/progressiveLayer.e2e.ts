/**
 * Progressive analysis on a layer big enough for it to matter (2048×2048): the panel shows the
 * metrics, the curves to the current rank and the top of both spectra first, says what is still
 * coming, and then fills in the full spectra.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { mulberry32 } from '../../../src/engine/random';
import { e2eEnv } from '../lib/env';
import { LayerPanel, Overview, screenshot, showExplorer, showLayersView } from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT } from '../lib/workbench';

const SUITE = 'progressive-layer';
const FOLDER = 'wide-llama';
const FILE = `${FOLDER}/model.safetensors`;
const N = 2048;
const LAYER = 'model.layers.0.mlp.up_proj.weight';

function writeWideFixture(workspace: string): void {
  if (existsSync(join(workspace, FILE))) return;
  mkdirSync(join(workspace, FOLDER), { recursive: true });
  const r = mulberry32(7);
  const w = Float32Array.from({ length: N * N }, () => 0.04 * (r() + r() + r() - 1.5));
  writeSafetensors(join(workspace, FILE), [f32Tensor(LAYER, [N, N], w)], { format: 'pt' });
  writeFileSync(
    join(workspace, FOLDER, 'config.json'),
    JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }),
  );
}
writeWideFixture(e2eEnv().workspace);

describe('Progressive layer analysis', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('a 2048-wide layer shows first numbers, then the full spectra', async (wb, env) => {
    await showExplorer(wb);
    await wb.explorerContextAction(FILE, 'Inspect Checkpoint');
    await Overview.of(wb, 'model.safetensors');
    // A checkpoint of one block lists its layer at the top of the tree.
    const tree = await showLayersView(wb);
    const row = tree.locator(`.monaco-list-row[aria-label^="${LAYER},"]`);
    await row.waitFor({ timeout: TIMEOUT.ui });
    await row.click();
    const panel = await LayerPanel.of(wb, LAYER);

    // First state: metrics at the current rank and the top of the spectra, the rest announced.
    await panel.waitForAnalysis('mxint4', TIMEOUT.webview * 6, 'partial');
    assert.equal(await panel.metric('rank'), '32');
    assert.match(await panel.metric('weightError'), /^\d+\.\d+ % \(RTN \d+\.\d+ %\)$/);
    assert.match(await panel.partialSpectrum(), new RegExp(`^top \\d+ of ${N}$`));
    assert.match(await panel.frame.locator('#status').innerText(), /still computing .*full spectra/);
    await screenshot(wb, env, SUITE, 'first-numbers');

    // Second state: the full spectra, nothing announced any more.
    await panel.waitForAnalysis('mxint4', TIMEOUT.webview * 12);
    assert.equal(await panel.partialSpectrum(), '');
    assert.match(await panel.frame.locator('#status').innerText(), /^Showing /);
    const [plain = 0, scaled = 0] = await panel.chartPoints('spectra-chart');
    assert.ok(plain > 64 && scaled > 64, `the whole spectrum is drawn: ${plain}, ${scaled}`);
    assert.equal(await panel.metric('rank'), '32');
    await screenshot(wb, env, SUITE, 'complete');
  });
});
