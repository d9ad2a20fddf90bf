/** Owns the worker pool that runs the engine for the extension. */
import * as vscode from 'vscode';
import { WorkerPool } from '../worker/pool';

export class EngineService implements vscode.Disposable {
  readonly pool: WorkerPool;

  constructor(
    extensionUri: vscode.Uri,
    readonly log: vscode.LogOutputChannel,
  ) {
    const size = vscode.workspace.getConfiguration('quantLens').get<number>('workers', 1);
    this.pool = new WorkerPool({ script: vscode.Uri.joinPath(extensionUri, 'dist', 'worker.js').fsPath, size });
  }

  dispose(): void {
    void this.pool.dispose();
  }
}
