/** The checkpoint overview panel: opened by "Quant Lens: Inspect Checkpoint". */
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { OverviewInbound, OverviewOutbound } from '../shared/webviewProtocol';
import type { EngineService } from './engineService';
import { toUserFacingError } from './errors';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class CheckpointPanel implements vscode.Disposable {
  static readonly viewType = 'quantLens.checkpoint';
  private static open = new Map<string, CheckpointPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  static show(uri: vscode.Uri, extensionUri: vscode.Uri, engine: EngineService): CheckpointPanel {
    const existing = CheckpointPanel.open.get(uri.fsPath);
    if (existing) {
      existing.panel.reveal();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      CheckpointPanel.viewType,
      `Quant Lens: ${basename(uri.fsPath)}`,
      vscode.ViewColumn.Active,
      { ...webviewOptions(extensionUri), retainContextWhenHidden: false },
    );
    const p = new CheckpointPanel(panel, uri, extensionUri, engine);
    CheckpointPanel.open.set(uri.fsPath, p);
    return p;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    readonly uri: vscode.Uri,
    extensionUri: vscode.Uri,
    private readonly engine: EngineService,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'overview', panel.title);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: OverviewOutbound) => this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  private post(msg: OverviewInbound): void {
    void this.panel.webview.postMessage(msg);
  }

  private async onMessage(msg: OverviewOutbound): Promise<void> {
    if (msg.type === 'ready') await this.load();
  }

  private async load(): Promise<void> {
    const path = this.uri.fsPath;
    this.post({ type: 'loading', path });
    const t0 = Date.now();
    try {
      const summary = await this.engine.pool.call('openCheckpoint', { path });
      this.engine.log.info(`opened ${path}: ${summary.tensors.length} tensors in ${Date.now() - t0} ms`);
      this.post({ type: 'checkpoint', summary });
    } catch (e) {
      const error = toUserFacingError(e);
      this.engine.log.warn(`cannot open ${path}: ${error.message}`);
      this.post({ type: 'error', error });
    }
  }

  dispose(): void {
    CheckpointPanel.open.delete(this.uri.fsPath);
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }
}
