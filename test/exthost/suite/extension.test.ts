/// <reference types="mocha" />
/**
 * Runs inside a real VS Code extension host (Electron's through @vscode/test-electron, or
 * code-server's), with this repository as the extension under development and
 * out/exthost/workspace (the e2e fixtures) as the workspace.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { Kernels, mat } from '../../../src/engine/linalg/kernels';
import { WorkerPool } from '../../../src/worker/pool';
import { fixtures } from '../../e2e/lib/fixtures';

const EXTENSION_ID = 'quant-lens.quant-lens';
const COMMAND = 'quantLens.inspectCheckpoint';

function workspaceFile(relativePath: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the suite runs with a workspace folder open');
  return vscode.Uri.joinPath(folder.uri, relativePath);
}

/** Tabs of the checkpoint overview (a custom editor) showing `uri`. */
function overviewTabs(uri: vscode.Uri): vscode.Tab[] {
  return vscode.window.tabGroups.all
    .flatMap((g) => g.tabs)
    .filter(
      (t) =>
        t.input instanceof vscode.TabInputCustom &&
        t.input.viewType === 'quantLens.overview' &&
        t.input.uri.toString() === uri.toString(),
    );
}

/** Polls a condition the extension host has no event for (a webview tab's appearance). */
async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function extension(): vscode.Extension<unknown> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `${EXTENSION_ID} is loaded`);
  return ext;
}

suite('Quant Lens in the extension host', () => {
  suiteSetup(async () => {
    await extension().activate();
  });

  teardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('activates and registers Inspect Checkpoint', async () => {
    assert.equal(extension().isActive, true);
    assert.ok((await vscode.commands.getCommands(true)).includes(COMMAND));
  });

  test('Inspect Checkpoint opens one overview editor per file and reveals it again', async () => {
    const uri = workspaceFile(fixtures.tiny.path);
    await vscode.commands.executeCommand(COMMAND, uri);
    await until(`an overview tab of ${fixtures.tiny.fileName}`, () => overviewTabs(uri).length === 1);
    await vscode.commands.executeCommand(COMMAND, uri);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(overviewTabs(uri).length, 1, 'a second Inspect reveals the open editor');
  });

  test("the extension's worker bundle reads a checkpoint on this runtime", async () => {
    const pool = new WorkerPool({ script: join(extension().extensionPath, 'dist', 'worker.js') });
    try {
      const summary = await pool.call('openCheckpoint', { path: workspaceFile(fixtures.tiny.path).fsPath });
      assert.deepEqual(
        summary.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: `[${t.shape.join(', ')}]` })),
        fixtures.tiny.tensors,
      );
      assert.equal(summary.architecture, fixtures.tiny.architecture);
    } finally {
      await pool.dispose();
    }
  });

  test('onnxruntime-node loads and multiplies on this runtime', async () => {
    const kernels = new Kernels({ threads: 1 });
    try {
      const c = await kernels.matmul(mat(Float32Array.of(1, 2, 3, 4), 2, 2), mat(Float32Array.of(5, 6, 7, 8), 2, 2));
      assert.deepEqual(Array.from(c.data), [19, 22, 43, 50]);
    } finally {
      await kernels.dispose();
    }
  });
});
