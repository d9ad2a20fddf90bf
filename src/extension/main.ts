/** Extension entry point: wires commands, panels and the engine worker pool. */
import * as vscode from 'vscode';
import { CheckpointPanel } from './checkpointPanel';
import { EngineService } from './engineService';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Quant Lens', { log: true });
  const engine = new EngineService(context.extensionUri, log);
  context.subscriptions.push(
    log,
    engine,
    vscode.commands.registerCommand('quantLens.inspectCheckpoint', async (uri?: vscode.Uri) => {
      const target = uri ?? (await pickCheckpoint());
      if (target) CheckpointPanel.show(target, context.extensionUri, engine);
    }),
  );
}

async function pickCheckpoint(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Inspect',
    title: 'Quant Lens: choose a checkpoint',
    filters: { Checkpoints: ['safetensors', 'onnx', 'gguf', 'bin', 'pt', 'pth', 'json'] },
  });
  return picked?.[0];
}

export function deactivate(): void {}
