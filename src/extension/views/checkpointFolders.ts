/**
 * Which folders of the workspace hold a checkpoint, published as the context key
 * `quantLens.checkpointFolders` so the explorer offers "Inspect Checkpoint" on exactly those
 * folders (a `when` clause cannot look inside a folder by itself).
 */
import * as vscode from 'vscode';
import { posix } from 'node:path';
import { CHECKPOINT_FILE_NAMES } from '../../engine/readers/registry';

export const CHECKPOINT_GLOB = `**/{${CHECKPOINT_FILE_NAMES.join(',')}}`;
const EXCLUDE = '**/{node_modules,.git}/**';
const MAX_FILES = 20_000;

export class CheckpointFolderIndex implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly log: vscode.LogOutputChannel) {
    const watcher = vscode.workspace.createFileSystemWatcher(CHECKPOINT_GLOB, false, true, false);
    const later = () => this.schedule();
    this.disposables.push(
      watcher,
      watcher.onDidCreate(later),
      watcher.onDidDelete(later),
      vscode.workspace.onDidChangeWorkspaceFolders(later),
    );
    this.schedule(0);
  }

  private schedule(delay = 1000): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.update(), delay);
  }

  private async update(): Promise<void> {
    try {
      const files = await vscode.workspace.findFiles(CHECKPOINT_GLOB, EXCLUDE, MAX_FILES);
      const folders = [...new Set(files.map((f) => posix.dirname(f.path)))].sort();
      await vscode.commands.executeCommand('setContext', 'quantLens.checkpointFolders', folders);
    } catch (e) {
      this.log.warn(`cannot list the folders holding checkpoints: ${String(e)}`);
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
