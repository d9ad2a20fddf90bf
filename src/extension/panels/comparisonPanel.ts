/**
 * The checkpoint comparison panels: W₂ − W₁ per paired linear layer of two checkpoints, computed by
 * the worker's compareCheckpoints under a cancellable notification (progress also in the panel),
 * and revived after a window reload from the state the webview saved. One panel per pair of files.
 */
import * as vscode from 'vscode';
import {
  COMPARISON_VIEW_TYPE,
  DEFAULT_COMPARISON_VIEW,
  comparisonLabels,
  parseComparisonPanelState,
  type CheckpointComparison,
  type ComparisonToHost,
  type ComparisonView,
  type HostToComparison,
} from '../../shared/protocol/comparison';
import type { JobProgress } from '../../shared/protocol/common';
import type { Services } from '../commands/checkpointCommands';
import { isCancellation, toUserFacingError } from '../errors';
import type { Reporter } from '../logging';
import { EtaEstimator } from '../services/eta';
import { LatestRun, PanelConnection, WebviewPanels, throttled } from './webviewPanels';

export interface ComparisonPanelHooks {
  openOverview(uri: vscode.Uri): Promise<void>;
}

interface ComparisonTarget {
  a: string;
  b: string;
  view: ComparisonView;
}

/** The comparison panels, one per ordered pair of checkpoint files. */
export class ComparisonPanels implements vscode.Disposable {
  private readonly panels: WebviewPanels<ComparisonTarget, ComparisonPanel>;

  constructor(extensionUri: vscode.Uri, services: Services, reporter: Reporter, hooks: ComparisonPanelHooks) {
    this.panels = new WebviewPanels<ComparisonTarget, ComparisonPanel>(
      {
        viewType: COMPARISON_VIEW_TYPE,
        entry: 'comparison',
        key: (t) => `${t.a}\n${t.b}`,
        title: () => 'Compare',
        parseState: (state) => parseComparisonPanelState(state),
        unrestorable:
          'This panel could not be restored: its saved state names no checkpoints. Close it and compare again.',
        create: (panel, t) => new ComparisonPanel(panel, t, extensionUri, services, reporter, hooks),
      },
      extensionUri,
      services.engine.log,
    );
  }

  register(): vscode.Disposable {
    return this.panels.register();
  }

  /** Opens (or reveals) the comparison of `a` (W₁) with `b` (W₂). */
  show(a: vscode.Uri, b: vscode.Uri): void {
    this.panels.show({ a: a.fsPath, b: b.fsPath, view: DEFAULT_COMPARISON_VIEW });
  }

  dispose(): void {
    this.panels.dispose();
  }
}

class ComparisonPanel implements vscode.Disposable {
  private result: { comparison: CheckpointComparison; timeMs: number } | null = null;
  private failure: HostToComparison | null = null;
  private progress: JobProgress | null = null;
  private readonly run = new LatestRun();
  private readonly a: string;
  private readonly b: string;
  private readonly initialView: ComparisonView;
  private readonly labels: { a: string; b: string };
  private readonly connection: PanelConnection<HostToComparison, ComparisonToHost>;

  constructor(
    private readonly panel: vscode.WebviewPanel,
    target: ComparisonTarget,
    extensionUri: vscode.Uri,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: ComparisonPanelHooks,
  ) {
    this.a = target.a;
    this.b = target.b;
    this.initialView = target.view;
    this.labels = comparisonLabels(this.a, this.b);
    this.connection = new PanelConnection<HostToComparison, ComparisonToHost>(panel, {
      extensionUri,
      entry: 'comparison',
      title: `${this.labels.a} ↔ ${this.labels.b}`,
      ownsTab: true,
      reporter,
      onMessage: (m) => this.onMessage(m),
      onDispose: () => this.dispose(),
    });
  }

  reveal(): void {
    this.panel.reveal();
  }

  private post(msg: HostToComparison): void {
    this.connection.post(msg);
  }

  private async onMessage(msg: ComparisonToHost): Promise<void> {
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
        this.run.abort();
        break;
      case 'recompute':
        await this.compute();
        break;
      case 'openOverview':
        await this.hooks.openOverview(vscode.Uri.file(msg.which === 'a' ? this.a : this.b));
        break;
    }
  }

  private async compute(): Promise<void> {
    const controller = this.run.start();
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
    const sendProgress = throttled((p: JobProgress) => this.post({ type: 'progress', progress: p }));
    const setProgress = (p: JobProgress, force: boolean) => {
      this.progress = p;
      sendProgress(p, force);
    };
    const t0 = Date.now();
    log.info(`comparing ${this.a} with ${this.b}`);
    setProgress(snapshot(true), true);
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
                  setProgress(snapshot(true), p.done === p.total);
                },
              },
            );
          } finally {
            sub.dispose();
          }
        },
      );
      if (!this.run.isCurrent(controller)) return;
      this.result = { comparison, timeMs: Date.now() - t0 };
      const changed = comparison.layers.filter((l) => l.verdict === 'changed').length;
      log.info(
        `comparison of ${this.labels.a} with ${this.labels.b}: ${comparison.layers.length} paired layers, ${changed} changed, in ${this.result.timeMs} ms`,
      );
      this.post({ type: 'comparison', ...this.result });
    } catch (e) {
      if (!this.run.isCurrent(controller)) return; // superseded by a newer run
      this.failure = { type: 'error', error: toUserFacingError(e) };
      this.post(this.failure);
      if (isCancellation(e)) log.info(`comparison of ${this.labels.a} with ${this.labels.b}: cancelled`);
      else this.reporter.fail(`comparing ${this.labels.a} with ${this.labels.b}`, e, false);
    } finally {
      tracked.dispose();
      if (this.run.isCurrent(controller)) {
        this.run.finish(controller);
        current = null;
        setProgress(snapshot(false), true);
      }
    }
  }

  dispose(): void {
    this.run.abort();
    this.connection.dispose();
  }
}
