/**
 * The result store in a real workbench: analyses kept in the extension's own store (its global
 * storage) come back after a window reload without being computed again, and an Analyze All that
 * was cancelled resumes with the layers it had not reached.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2eEnv, type E2eEnv } from '../lib/env';
import { Overview, screenshot, showExplorer, ui, writeUiFixtures } from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import { TIMEOUT, type Workbench } from '../lib/workbench';

const SUITE = 'result-store';
const env = e2eEnv();
writeUiFixtures(env.workspace);
// A copy of the UI checkpoint that no other scenario opens.
const FOLDER = 'quant-lens-ui/stored-llama';
const FILE = `${FOLDER}/model.safetensors`;
if (!existsSync(join(env.workspace, FILE)))
  cpSync(join(env.workspace, ui.folder), join(env.workspace, FOLDER), { recursive: true });

/** The extension's own store: <user data>/User/globalStorage/<publisher.name>/result-store. */
function storeRoot(e: E2eEnv): string {
  return join(e.userData, 'User', 'globalStorage', 'quant-lens.quant-lens', 'result-store');
}

function storeEntries(e: E2eEnv): Map<string, string> {
  const root = join(storeRoot(e), 'results');
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  for (const d of readdirSync(root)) {
    for (const f of readdirSync(join(root, d))) {
      const st = statSync(join(root, d, f));
      // A recomputed entry is written again: a new inode and modification time.
      out.set(f, `${st.ino}:${st.mtimeMs}`);
    }
  }
  return out;
}

/** The workspace setting that turns the store back on (the run's user settings turn it off). */
function useOwnStore(e: E2eEnv): () => void {
  const path = join(e.workspace, '.vscode', 'settings.json');
  const before = existsSync(path) ? readFileSync(path, 'utf8') : null;
  const settings = before ? (JSON.parse(before) as Record<string, unknown>) : {};
  mkdirSync(join(e.workspace, '.vscode'), { recursive: true });
  writeFileSync(path, JSON.stringify({ ...settings, 'quantLens.resultStore': '' }, null, 2));
  return () => {
    const now = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
    delete now['quantLens.resultStore'];
    writeFileSync(path, JSON.stringify(now, null, 2));
  };
}

async function reload(wb: Workbench): Promise<void> {
  const loaded = wb.page.waitForEvent('load', { timeout: TIMEOUT.workbench });
  await wb.runCommand('Developer: Reload Window');
  await loaded;
  await wb.page.locator('.monaco-workbench').waitFor({ timeout: TIMEOUT.workbench });
}

/** The overview after a reload: the workbench restores the editor; opened again if it did not. */
async function overviewAfterReload(wb: Workbench): Promise<Overview> {
  try {
    return await Overview.of(wb, ui.fileName);
  } catch {
    await showExplorer(wb);
    await wb.explorerContextAction(FILE, 'Inspect Checkpoint');
    return Overview.of(wb, ui.fileName);
  }
}

async function waitForCount(overview: Overview, n: number, timeout: number): Promise<void> {
  await overview.frame
    .locator('#layer-count', { hasText: new RegExp(`\\b${n} analysed`) })
    .waitFor({ timeout })
    .catch(async (e: unknown) => {
      throw new Error(
        `expected ${n} analysed, the overview says "${await overview.frame.locator('#layer-count').innerText()}": ${String(e)}`,
      );
    });
}

describe('Result store', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario(
    'a reload shows the analysed layers without computing them; a cancelled Analyze All resumes',
    async (wb) => {
      const restore = useOwnStore(env);
      try {
        const total = ui.layers.length;
        if (storeEntries(env).size > 0) {
          // A retried attempt starts from an empty store (the first attempt filled it); the reload
          // drops what the extension host holds of it.
          rmSync(storeRoot(env), { recursive: true, force: true });
          await reload(wb);
        }
        await showExplorer(wb);
        await wb.explorerContextAction(FILE, 'Inspect Checkpoint', TIMEOUT.webview);
        let overview = await Overview.of(wb, ui.fileName);
        assert.equal(await overview.analysedCount(), 0);
        // Analyze All, cancelled once a few layers are done.
        await overview.click('analyze-all');
        await overview.waitForProgress(new RegExp(`Analysing: [2-9]\\d* / ${total} layers`));
        await wb.runCommand('Quant Lens: Cancel Running Analysis');
        const stopped = await overview.waitForProgress(/stopped at/);
        const done = await overview.analysedCount();
        assert.ok(done >= 2 && done < total, `${done} of ${total} analysed when cancelled (${stopped})`);
        const counted = storeEntries(env);
        assert.ok(counted.size >= done, `${counted.size} store entries for ${done} analysed layers`);

        // After a reload: the same layers, from the store, nothing written again. The layer that was
        // being analysed when the cancel came may have finished before the worker saw it; a finished
        // analysis is kept, so the store holds it too (the overview counted only what had arrived).
        await reload(wb);
        const kept = storeEntries(env);
        assert.ok(kept.size === done || kept.size === done + 1, `${kept.size} store entries after ${done} analysed`);
        for (const [name, id] of counted) assert.equal(kept.get(name), id, `${name} was rewritten`);
        overview = await overviewAfterReload(wb);
        await waitForCount(overview, kept.size, TIMEOUT.webview);
        assert.deepEqual(storeEntries(env), kept, 'no entry was written again: nothing was recomputed');
        await screenshot(wb, env, SUITE, 'after-reload');

        // Analyze All resumes: only the layers it had not reached.
        await overview.click('analyze-all');
        await overview.waitForProgress(new RegExp(`/ ${total - kept.size} layers`));
        await waitForCount(overview, total, TIMEOUT.webview * 6);
        const all = storeEntries(env);
        for (const [name, id] of kept) assert.equal(all.get(name), id, `${name} was rewritten`);

        // And a second reload shows every layer at once.
        await reload(wb);
        overview = await overviewAfterReload(wb);
        await waitForCount(overview, total, TIMEOUT.webview);
        assert.deepEqual(storeEntries(env), all);
      } finally {
        restore();
      }
    },
  );
});
