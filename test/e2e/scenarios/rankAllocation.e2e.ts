/**
 * The overview's rank allocation in a real workbench: the curves computed by the worker with
 * progress, the chart of ranks (and formats) per layer against the uniform rank, re-allocated at
 * once when the budget changes, the recipe exported through a save dialog and accepted by the
 * installed CLI's `export --recipe`, and the quantized checkpoint exported with it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { writeAnalysisFixtures } from '../lib/analysisFixtures';
import { numbersOf, scrollTo, setCalibrationFile, tickOptions, untickOptions } from '../lib/sectionUi';
import { e2eEnv } from '../lib/env';
import {
  Overview,
  answerSaveDialog,
  exportThroughPicker,
  clearCalibrationFromPalette,
  screenshot,
  setColorTheme,
  showExplorer,
  ui,
  waitForFile,
} from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT, type Workbench } from '../lib/workbench';
import type { Frame } from 'playwright-core';

const SUITE = 'rank-allocation';
writeAnalysisFixtures(e2eEnv().workspace);

interface Recipe {
  kind: string;
  version: number;
  method?: string;
  layers: Record<string, { format: string; rank: number }>;
}

/** Opens the overview with calibration and computes the curves for MXINT4 and MXINT3. */
async function computeAllocation(wb: Workbench, env: ReturnType<typeof e2eEnv>): Promise<Overview> {
  await showExplorer(wb);
  await setCalibrationFile(wb, env, ui.stats);
  await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
  const overview = await Overview.of(wb, ui.fileName);
  const f = overview.frame;
  await f.locator('#calibration', { hasText: 'stats.safetensors' }).waitFor({ timeout: TIMEOUT.webview });
  await scrollTo(f, '#allocation');
  await tickOptions(f, 'allocation-formats', ['MXINT3 (block 16)']);
  await f.locator('#allocation-formats-note', { hasText: 'MXINT3' }).waitFor({ timeout: TIMEOUT.ui });
  assert.match(await f.locator('#allocation-formats-note').innerText(), /· L²QER,/, 'calibrated: L²QER');
  await f.locator('#allocation-compute').click();
  await waitForCurves(f, ['mxint3', 'mxint4']);
  return overview;
}

/**
 * Waits for the curves of these candidate formats, computed with the overview's settings: every
 * overview of the checkpoint is first shown its last allocation (an earlier scenario's, perhaps),
 * which a wait for any chart would take for the new one.
 */
async function waitForCurves(f: Frame, formats: string[]): Promise<void> {
  const candidates = [...formats].sort().join(',');
  await f.locator(`#allocation-body[data-candidates="${candidates}"]:not([hidden])`).waitFor({ timeout: 150_000 });
  await f.locator('#allocation-stale[hidden]').waitFor({ state: 'attached', timeout: TIMEOUT.webview });
  await f.locator('#allocation-chart[data-ranks]').waitFor({ timeout: TIMEOUT.webview });
}

function safetensorsHeader(path: string): Record<string, { shape: number[] }> {
  const bytes = readFileSync(path);
  return JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<
    string,
    { shape: number[] }
  >;
}

/** "Export Quantized Checkpoint with This Recipe…" to one target; returns the targets offered. */
async function exportAllocation(
  wb: Workbench,
  f: Frame,
  label: string,
  out: string,
  folder: boolean,
): Promise<string[]> {
  await f.locator('#allocation-export-checkpoint').click();
  return (await exportThroughPicker(wb, label, out, { folder, title: 'the allocated recipe' })).offered;
}

const bitsOf = async (overview: Overview, row: string) =>
  Number(await overview.frame.locator(`#allocation-summary tr[data-row="${row}"] td`).nth(1).innerText());

describe('Rank allocation', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario('without calibration, the default candidate format is chosen and computes', async (wb, env) => {
    // The defect this guards against: the select showed "1 Selected" while the button stayed
    // disabled with "Choose at least one candidate weight format." on a fresh overview.
    await showExplorer(wb);
    await clearCalibrationFromPalette(wb);
    await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, ui.fileName);
    const f = overview.frame;
    await scrollTo(f, '#allocation');
    await f.locator('#allocation-formats', { hasText: '1 Selected' }).waitFor({ timeout: TIMEOUT.webview });
    await f.locator('#allocation-formats-note', { hasText: 'Rank allocation in MXINT4' }).waitFor({
      timeout: TIMEOUT.ui,
    });
    await f.locator('#allocation-compute:not([disabled])').click({ timeout: TIMEOUT.ui });
    await waitForCurves(f, ['mxint4']);
    const formats = (await f.locator('#allocation-chart').getAttribute('data-formats'))!.split(',');
    assert.deepEqual(new Set(formats), new Set(['mxint4']), 'one candidate: ranks only, all MXINT4');
    assert.match(await f.locator('#allocation-objective-note').innerText(), /weight error/);
    assert.match(await f.locator('#allocation-formats-note').innerText(), /· LQER,/);

    // Calibration set while the checkpoint is open: the automatic method becomes L²QER, and the
    // curves computed with LQER without calibration are marked as such.
    await setCalibrationFile(wb, env, ui.stats);
    await f.locator('#allocation-formats-note', { hasText: '· L²QER,' }).waitFor({ timeout: TIMEOUT.webview });
    await f
      .locator('#allocation-stale:not([hidden])', { hasText: 'the calibration changed' })
      .waitFor({ timeout: TIMEOUT.ui });
  });

  suite.scenario('the allocation chart follows the budget at once', async (wb, env) => {
    const overview = await computeAllocation(wb, env);
    const f = overview.frame;
    const ranks = await numbersOf(f, '#allocation-chart', 'data-ranks');
    assert.equal(ranks.length, ui.layers.length, 'one bar per quantized layer');
    const uniform = await numbersOf(f, '#allocation-chart', 'data-uniform');
    assert.equal(uniform.length, ui.layers.length);
    // The default budget is the uniform configuration's (MXINT4 at rank 32): the allocation may not exceed it.
    const budget = Number(await f.locator('#allocation-budget input').inputValue());
    assert.ok((await bitsOf(overview, 'allocated')) <= budget + 1e-9);
    assert.match(await f.locator('#allocation-gap').innerText(), /Greedy within [\d.]+ % of the optimum/);
    assert.match(await f.locator('#allocation-objective-note').innerText(), /output error/);
    await scrollTo(f, '#allocation-chart');
    await wb.screenshot('at-the-uniform-budget');

    // A smaller budget, typed: every layer's rank or format adjusts, and the totals follow.
    const lower = Number((budget - 1.5).toFixed(2));
    await f.locator('#allocation-budget input').fill(String(lower));
    await f.locator('#allocation-budget input').press('Enter');
    await f.locator('#allocation-budget-note', { hasText: `${lower.toFixed(3)} bits per weight` }).waitFor({
      timeout: TIMEOUT.ui,
    });
    const after = await numbersOf(f, '#allocation-chart', 'data-ranks');
    const formats = (await f.locator('#allocation-chart').getAttribute('data-formats'))!.split(',');
    assert.notDeepEqual(
      [after, formats],
      [ranks, Array(ranks.length).fill('mxint4')],
      'the allocation changed with the budget',
    );
    assert.ok((await bitsOf(overview, 'allocated')) <= lower + 1e-9);
    assert.ok(formats.includes('mxint3'), 'a tight budget moves some layers to MXINT3');
    // The slider: one step right raises the budget, the chart follows without a host round trip.
    await f.locator('#allocation-budget-slider').focus();
    for (let i = 0; i < 40; i++) await f.locator('#allocation-budget-slider').press('ArrowRight');
    const raised = Number(await f.locator('#allocation-budget input').inputValue());
    assert.ok(raised > lower, `the slider raised the budget (${raised} > ${lower})`);
    await scrollTo(f, '#allocation-chart');
    await screenshot(wb, env, SUITE, 'allocation-after-budget-change');

    // Other candidates, not computed yet: the chart stays, and says what it was computed for.
    const shown = await f.locator('#allocation-chart').getAttribute('data-formats');
    await scrollTo(f, '#allocation');
    await untickOptions(f, 'allocation-formats', ['MXINT3 (block 16)']);
    const stale = f.locator('#allocation-stale:not([hidden])', { hasText: 'the candidates changed' });
    await stale.waitFor({ timeout: TIMEOUT.ui });
    assert.match(await stale.innerText(), /curves: .*MXINT3/);
    assert.equal(
      await f.locator('#allocation-chart').getAttribute('data-formats'),
      shown,
      'the chart keeps the computed allocation until Compute',
    );
  });

  suite.scenario('the recipe export writes a file that quant-lens export --recipe accepts', async (wb, env) => {
    const overview = await computeAllocation(wb, env);
    const f = overview.frame;
    const ranks = await numbersOf(f, '#allocation-chart', 'data-ranks');
    const recipePath = join(env.workspace, `allocation-${Date.now()}.recipe.json`);
    await f.locator('#allocation-export-recipe').click();
    await answerSaveDialog(wb, 'Quant Lens: save the allocation recipe', recipePath);
    await waitForFile(recipePath);
    const recipe = JSON.parse(readFileSync(recipePath, 'utf8')) as Recipe;
    assert.equal(recipe.kind, 'quant-lens-recipe');
    assert.equal(recipe.version, 1);
    assert.deepEqual(
      ui.layers.map((l) => recipe.layers[l]?.rank),
      ranks,
      'the recipe is the allocation on screen',
    );
    // The installed CLI applies it.
    const out = join(env.workspace, `allocation-${Date.now()}.safetensors`);
    const r = spawnSync(
      env.node,
      [
        join(env.extensionDir, 'dist', 'cli.js'),
        'export',
        ui.file,
        '--recipe',
        recipePath,
        '--method',
        recipe.method ?? 'l2qer',
        '--calib',
        ui.stats,
        '--out',
        out,
      ],
      { cwd: env.workspace, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, `quant-lens export --recipe failed:\n${r.stderr}`);
    const bytes = readFileSync(out);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<
      string,
      { shape: number[] }
    >;
    for (const [name, entry] of Object.entries(recipe.layers)) {
      if (entry.rank > 0)
        assert.equal(header[`${name}.lqer_A`]?.shape[1], entry.rank, `${name}: A has the recipe's rank`);
    }
    // And the overview exports the same recipe itself, to the targets MXINT allows.
    const own = join(env.workspace, `allocation-ui-${Date.now()}.safetensors`);
    const offered = await exportAllocation(wb, f, 'Quant Lens safetensors', own, false);
    assert.deepEqual(
      offered,
      ['Quant Lens safetensors', 'Hugging Face checkpoint + PEFT adapter'],
      'MXINT: no GGUF, llm-compressor or ModelOpt',
    );
    const ownHeader = safetensorsHeader(own);
    for (const [name, entry] of Object.entries(recipe.layers)) {
      assert.equal(
        ownHeader[`${name}.lqer_A`]?.shape[1],
        entry.rank || undefined,
        `${name}: the UI export has the allocated rank`,
      );
    }
    const hf = join(env.workspace, `allocation-hf-${Date.now()}`);
    await exportAllocation(wb, f, 'Hugging Face checkpoint + PEFT adapter', hf, true);
    const adapter = JSON.parse(readFileSync(join(hf, 'adapter', 'adapter_config.json'), 'utf8')) as {
      r: number;
      rank_pattern: Record<string, number>;
    };
    for (const [name, entry] of Object.entries(recipe.layers)) {
      if (entry.rank > 0)
        assert.equal(
          adapter.rank_pattern[name.replace(/\.weight$/, '')] ?? adapter.r,
          entry.rank,
          `${name}: adapter rank`,
        );
    }
    await scrollTo(f, '#allocation-export-recipe');
  });

  suite.scenario('fused groups: q/k/v and gate/up get one format each, the chart marks them', async (wb, env) => {
    const overview = await computeAllocation(wb, env);
    const f = overview.frame;
    await scrollTo(f, '#allocation-fused');
    await f.locator('#allocation-fused').click();
    await f.locator('#allocation-chart[data-groups*="q/k/v"]').waitFor({ timeout: TIMEOUT.webview });
    const groups = ((await f.locator('#allocation-chart').getAttribute('data-groups')) ?? '').split('|');
    const formats = ((await f.locator('#allocation-chart').getAttribute('data-formats')) ?? '').split(',');
    assert.equal(groups.length, ui.layers.length);
    const byGroup = new Map<string, Set<string>>();
    groups.forEach((g, i) => {
      if (g) byGroup.set(g, (byGroup.get(g) ?? new Set()).add(formats[i]!));
    });
    assert.equal(byGroup.size, 4, `q/k/v and gate/up of 2 blocks: ${[...byGroup.keys()].join(', ')}`);
    for (const [g, set] of byGroup) assert.equal(set.size, 1, `${g}: one format`);
    await scrollTo(f, '#allocation-chart');
    await screenshot(wb, env, SUITE, 'allocation-fused-groups');
  });

  suite.scenario('light and dark theme: the allocation section', async (wb, env) => {
    const overview = await computeAllocation(wb, env);
    await setColorTheme(wb, 'Light Modern');
    await overview.frame.locator('body.vscode-light').waitFor({ timeout: TIMEOUT.ui });
    await scrollTo(overview.frame, '#allocation-chart');
    await screenshot(wb, env, SUITE, 'light-allocation');
    await setColorTheme(wb, 'Dark Modern');
    await overview.frame.locator('body.vscode-dark').waitFor({ timeout: TIMEOUT.ui });
    await scrollTo(overview.frame, '#allocation-chart');
    await screenshot(wb, env, SUITE, 'dark-allocation');
    await clearCalibrationFromPalette(wb);
  });
});
