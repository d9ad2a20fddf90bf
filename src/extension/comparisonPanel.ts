/**
 * The checkpoint comparison panels: W₂ − W₁ per paired linear layer of two checkpoints, computed by
 * the worker's compareCheckpoints under a cancellable notification (progress also in the panel),
 * and revived after a window reload from the state the webview saved. One panel per pair of files.
 */
import * as vscode from 'vscode';
import { DEFAULT_COMPARISON_VIEW, comparisonLabels, parseComparisonPanelState } from '../shared/comparisonView';
import type {
  CheckpointComparison,
  ComparisonInbound,
  ComparisonOutbound,
  ComparisonView,
  JobProgress,
} from '../shared/webviewProtocol';
import type { Services } from './batchActions';
import { isCancellation, toUserFacingError } from './errors';
import { EtaEstimator } from './eta';
import type { Reporter } from './logging';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const COMPARISON_VIEW_TYPE = 'quantLens.compare';

/** Progress messages to the webview at most this often (the last one always goes). */
const PROGRESS_INTERVAL_MS = 150;

export interface ComparisonPanelHooks {
  openOverview(uri: vscode.Uri): Promise<void>;
}

const pairKey = (a: string, b: string) => `${a}\u0000${b}`;

export class ComparisonPanels implements vscode.Disposable {
  private readonly open = new Map<string, ComparisonPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: ComparisonPanelHooks,
  ) {}

  register(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(COMPARISON_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state) => this.revive(panel, state),
    });
  }

  /** Opens (or reveals) the comparison of `a` (W₁) with `b` (W₂). */
  show(a: vscode.Uri, b: vscode.Uri): void {
    const existing = this.open.get(pairKey(a.fsPath, b.fsPath));
    if (existing) {
      existing.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(COMPARISON_VIEW_TYPE, 'Compare', vscode.ViewColumn.Active, {
      ...webviewOptions(this.extensionUri),
      retainContextWhenHidden: false,
    });
    this.create(panel, a.fsPath, b.fsPath, DEFAULT_COMPARISON_VIEW);
  }

  private revive(panel: vscode.WebviewPanel, state: unknown): void {
    const parsed = parseComparisonPanelState(state);
    if (!parsed) {
      this.services.engine.log.info(`cannot restore a comparison panel from ${JSON.stringify(state)}`);
      panel.webview.options = webviewOptions(this.extensionUri);
      panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'compare', panel.title);
      const sub = panel.webview.onDidReceiveMessage((m: ComparisonOutbound) => {
        if (m.type !== 'ready') return;
        const msg: ComparisonInbound = {
          type: 'error',
          error: {
            code: 'internal',
            message:
              'This panel could not be restored: its saved state names no checkpoints. Close it and compare again.',
          },
        };
        void panel.webview.postMessage(msg);
      });
      panel.onDidDispose(() => sub.dispose());
      return;
    }
    this.services.engine.log.info(`restoring the comparison of ${parsed.a} with ${parsed.b}`);
    const existing = this.open.get(pairKey(parsed.a, parsed.b));
    if (existing) {
      panel.dispose();
      existing.reveal();
      return;
    }
    this.create(panel, parsed.a, parsed.b, parsed.view);
  }

  private create(panel: vscode.WebviewPanel, a: string, b: string, view: ComparisonView): void {
    const key = pairKey(a, b);
    const p = new ComparisonPanel(panel, a, b, view, this.extensionUri, this.services, this.reporter, this.hooks);
    this.open.set(key, p);
    panel.onDidDispose(() => {
      if (this.open.get(key) === p) this.open.delete(key);
    });
  }

  dispose(): void {
    for (const p of [...this.open.values()]) p.dispose();
  }
}

class ComparisonPanel implements vscode.Disposable {
  private result: { comparison: CheckpointComparison; timeMs: number } | null = null;
  private failure: ComparisonInbound | null = null;
  private progress: JobProgress | null = null;
  private run: AbortController | undefined;
  private readonly labels: { a: string; b: string };
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly a: string,
    private readonly b: string,
    private readonly initialView: ComparisonView,
    extensionUri: vscode.Uri,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: ComparisonPanelHooks,
  ) {
    this.labels = comparisonLabels(a, b);
    panel.title = `${this.labels.a} ↔ ${this.labels.b}`;
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'compare', panel.title);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: ComparisonOutbound) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  reveal(): void {
    this.panel.reveal();
  }

  private post(msg: ComparisonInbound): void {
    void this.panel.webview.postMessage(msg).then(undefined, () => undefined);
  }

  private async onMessage(msg: ComparisonOutbound): Promise<void> {
    try {
      switch (msg.type) {
        case 'ready':
          // A webview shown again (it is not kept while hidden) gets what the panel already has.
          this.post({ type: 'setup', a: this.a, b: this.b, view: this.initialView });
          if (this.result) this.post({ type: 'comparison', ...this.result });
          else if (this.progress?.running) this.post({ type: 'progress', progress: this.progress });
          else if (this.failure) this.post(this.failure);
          else await this.compute();
          break;
        case 'cancel':
          this.run?.abort();
          break;
        case 'recompute':
          await this.compute();
          break;
        case 'openOverview':
          await this.hooks.openOverview(vscode.Uri.file(msg.which === 'a' ? this.a : this.b));
          break;
      }
    } catch (e) {
      this.reporter.fail(`comparison panel (${msg.type})`, e);
    }
  }

  private setProgress(p: JobProgress, force: boolean, last: { at: number }): void {
    this.progress = p;
    const now = Date.now();
    if (!force && now - last.at < PROGRESS_INTERVAL_MS) return;
    last.at = now;
    this.post({ type: 'progress', progress: p });
  }

  private async compute(): Promise<void> {
    this.run?.abort();
    const controller = new AbortController();
    this.run = controller;
    this.result = null;
    this.failure = null;
    const tracked = this.services.jobs.track(controller);
    const log = this.services.engine.log;
    let eta: EtaEstimator | null = null;
    let current: string | null = null;
    const snapshot = (running: boolean): JobProgress => ({
      kind: 'checkpoint-comparison',
      running,
      done: eta?.done ?? 0,
      total: eta?.total ?? 0,
      current,
      etaMs: eta?.etaMs() ?? null,
    });
    const last = { at: 0 };
    const t0 = Date.now();
    log.info(`comparing ${this.a} with ${this.b}`);
    this.setProgress(snapshot(true), true, last);
    try {
      const comparison = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `Quant Lens: comparing ${this.labels.a} with ${this.labels.b}`,
          cancellable: true,
        },
        async (notification, token) => {
          const sub = token.onCancellationRequested(() => controller.abort());
          try {
            return await this.services.engine.pool.call(
              'compareCheckpoints',
              { a: this.a, b: this.b, spectra: true },
              {
                signal: controller.signal,
                onProgress: (p) => {
                  eta ??= new EtaEstimator(p.total);
                  while (eta.done < p.done) eta.tick();
                  current = p.layer;
                  notification.report({
                    message: `${p.done} / ${p.total} layers · ${p.layer}`,
                    increment: 100 / p.total,
                  });
                  this.setProgress(snapshot(true), p.done === p.total, last);
                },
              },
            );
          } finally {
            sub.dispose();
          }
        },
      );
      if (this.run !== controller) return;
      this.result = { comparison, timeMs: Date.now() - t0 };
      const changed = comparison.layers.filter((l) => l.verdict === 'changed').length;
      log.info(
        `comparison of ${this.labels.a} with ${this.labels.b}: ${comparison.layers.length} paired layers, ${changed} changed, in ${this.result.timeMs} ms`,
      );
      this.post({ type: 'comparison', ...this.result });
    } catch (e) {
      if (this.run !== controller) return; // superseded by a newer run
      this.failure = { type: 'error', error: toUserFacingError(e) };
      this.post(this.failure);
      if (isCancellation(e)) log.info(`comparison of ${this.labels.a} with ${this.labels.b}: cancelled`);
      else this.reporter.fail(`comparing ${this.labels.a} with ${this.labels.b}`, e, false);
    } finally {
      tracked.dispose();
      if (this.run === controller) {
        this.run = undefined;
        current = null;
        this.setProgress(snapshot(false), true, last);
      }
    }
  }

  dispose(): void {
    this.run?.abort();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
