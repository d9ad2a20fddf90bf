/** "Quant Lens: Inspect Checkpoint" in a real workbench, from the explorer and from the palette. */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { join } from 'node:path';
import { fixtures } from '../lib/fixtures';
import { OverviewPanel } from '../lib/overviewPanel';
import { workbenchSuite } from '../lib/suite';

const COMMAND = 'Quant Lens: Inspect Checkpoint';
const MENU_ENTRY = 'Inspect Checkpoint';

async function assertTinyOverview(panel: OverviewPanel): Promise<void> {
  assert.equal(await panel.title(), fixtures.tiny.fileName);
  assert.deepEqual(await panel.visibleTensors(), fixtures.tiny.tensors);
  const facts = await panel.facts();
  assert.equal(facts.Format, 'safetensors');
  assert.equal(facts.Architecture, fixtures.tiny.architecture);
}

describe('Inspect Checkpoint', () => {
  const suite = workbenchSuite('inspect-checkpoint');

  suite.scenario('explorer context menu on a .safetensors file lists its tensors', async (wb) => {
    await wb.explorerContextAction(fixtures.tiny.path, MENU_ENTRY);
    const panel = await OverviewPanel.of(wb, fixtures.tiny.fileName);
    await assertTinyOverview(panel);
    // The overview is a custom editor: its tab is the file's own (shown as name + extension).
    assert.ok((await wb.page.locator('.tabs-container .tab', { hasText: fixtures.tiny.fileName }).count()) > 0);
  });

  suite.scenario('command palette asks for a file and lists its tensors', async (wb, env) => {
    await wb.runCommand(COMMAND);
    await wb.answerFileDialog('Quant Lens: choose a checkpoint', join(env.workspace, fixtures.tiny.path));
    await assertTinyOverview(await OverviewPanel.of(wb, fixtures.tiny.fileName));
  });

  suite.scenario('the filter box narrows the tensor table', async (wb) => {
    await wb.explorerContextAction(fixtures.tiny.path, MENU_ENTRY);
    const panel = await OverviewPanel.of(wb, fixtures.tiny.fileName);
    await panel.filter('layers.1.');
    const expected = fixtures.tiny.tensors.filter((t) => t.name.includes('layers.1.'));
    await panel.waitForVisibleRows(expected.length);
    assert.deepEqual(await panel.visibleTensors(), expected);
  });

  suite.scenario('a malformed checkpoint shows the reader error', async (wb) => {
    await wb.explorerContextAction(fixtures.broken.path, MENU_ENTRY);
    const frame = await wb.webviewFrame('[role=alert]');
    assert.equal((await frame.locator('h1').innerText()).trim(), 'Cannot open this checkpoint');
    assert.match(await frame.locator('[role=alert]').innerText(), /header/i);
  });

  suite.scenario('files that are not checkpoints do not offer the command', async (wb) => {
    // Seeing the entry on a checkpoint first shows the extension's menu entries are registered.
    assert.ok((await wb.explorerContextMenu(fixtures.broken.path)).includes(MENU_ENTRY));
    await wb.dismiss();
    const labels = await wb.explorerContextMenu(fixtures.notes.path);
    await wb.dismiss();
    assert.ok(
      !labels.includes(MENU_ENTRY),
      `"${MENU_ENTRY}" must not be offered on ${fixtures.notes.path}: ${labels.join(' | ')}`,
    );
  });
});
