/**
 * The checkpoint overview as a custom read-only editor: the default editor for *.safetensors and
 * *.gguf, offered through "Open With…" for the other checkpoint files. Each editor binds one
 * webview to the checkpoint's session; several editors of one file share that session.
 */
import * as vscode from 'vscode';
import { sanitizeSettings } from '../shared/quantSettings';
import type { OverviewInbound, OverviewOutbound } from '../shared/webviewProtocol';
import {
  analyzeAll,
  compareCheckpointMethods,
  exportQuantizedCheckpoint,
  exportReport,
  type Services,
} from './batchActions';
import { allocationSupport, computeAllocation, exportRecipe, exportWithRecipe } from './allocationActions';
import type { CheckpointSession, SessionChange } from './checkpointSession';
import { isCancellation, toUserFacingError } from './errors';
import { sanitizeAllocationRequest, sanitizeAllocationView } from '../shared/allocationView';
import type { Reporter } from './logging';
import type { SessionRegistry } from './sessionRegistry';
import { webviewHtml, webviewOptions } from './webviewHtml';

/** Default for *.safetensors and *.gguf. */
export const OVERVIEW_VIEW_TYPE = 'quantLens.checkpoint';
/** "Open With…" for the other checkpoint files (ONNX, PyTorch, shard indexes, TF.js model.json). */
export const OVERVIEW_OPTIONAL_VIEW_TYPE = 'quantLens.checkpointOptional';

export interface OverviewHooks {
  openLayer(session: CheckpointSession, layer: string): void;
  setCalibration(): Promise<void>;
}

class CheckpointDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

export class CheckpointEditorProvider implements vscode.CustomReadonlyEditorProvider<CheckpointDocument> {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly sessions: SessionRegistry,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: OverviewHooks,
  ) {}

  static register(provider: CheckpointEditorProvider): vscode.Disposable[] {
    const options = { supportsMultipleEditorsPerDocument: true, webviewOptions: { retainContextWhenHidden: false } };
    return [
      vscode.window.registerCustomEditorProvider(OVERVIEW_VIEW_TYPE, provider, options),
      vscode.window.registerCustomEditorProvider(OVERVIEW_OPTIONAL_VIEW_TYPE, provider, options),
    ];
  }

  openCustomDocument(uri: vscode.Uri): CheckpointDocument {
    return new CheckpointDocument(uri);
  }

  resolveCustomEditor(document: CheckpointDocument, panel: vscode.WebviewPanel): void {
    const { session, release } = this.sessions.acquire(document.uri);
    new OverviewController(
      panel,
      session,
      release,
      this.extensionUri,
      this.sessions,
      this.services,
      this.reporter,
      this.hooks,
    );
  }
}

/** Keeps one overview webview in step with its session. */
class OverviewController {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly session: CheckpointSession,
    release: vscode.Disposable,
    extensionUri: vscode.Uri,
    sessions: SessionRegistry,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: OverviewHooks,
  ) {
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'overview', session.name);
    if (panel.active) sessions.setActive(session);
    this.disposables.push(
      release,
      panel.webview.onDidReceiveMessage((m: OverviewOutbound) => void this.onMessage(m)),
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.active) sessions.setActive(session);
      }),
      session.onDidChange((what) => this.push(what)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  private post(msg: OverviewInbound): void {
    // A hidden webview drops messages; it asks for everything again with 'ready' when shown.
    void this.panel.webview.postMessage(msg).then(undefined, () => undefined);
  }

  private async onMessage(msg: OverviewOutbound): Promise<void> {
    try {
      switch (msg.type) {
        case 'ready':
          await this.sendAll();
          break;
        case 'openLayer':
          this.hooks.openLayer(this.session, msg.name);
          break;
        case 'setSettings':
          this.session.setSettings(sanitizeSettings(msg.settings, this.session.settings));
          break;
        case 'command':
          await this.run(msg.command);
          break;
        case 'computeAllocation':
          await this.computeAllocation(msg.request, msg.view);
          break;
        case 'allocationView': {
          const view = sanitizeAllocationView(msg.view);
          if (view) this.session.setAllocationView(view);
          break;
        }
        case 'exportRecipe':
          await exportRecipe(this.session, this.services, msg.view);
          break;
        case 'exportWithRecipe':
          await exportWithRecipe(this.session, this.services, msg.view);
          break;
      }
    } catch (e) {
      this.reporter.fail(msg.type === 'command' ? msg.command : msg.type, e);
    }
  }

  /** Runs the allocation job; a failure shows in the section as well as in a notification. */
  private async computeAllocation(raw: unknown, view: unknown): Promise<void> {
    try {
      await computeAllocation(this.session, this.services, raw, sanitizeAllocationView(view));
    } catch (e) {
      const request = sanitizeAllocationRequest(raw);
      if (request && !isCancellation(e)) this.post({ type: 'allocationFailed', request, error: toUserFacingError(e) });
      throw e;
    }
  }

  private async run(command: Extract<OverviewOutbound, { type: 'command' }>['command']): Promise<void> {
    switch (command) {
      case 'analyzeAll':
        return analyzeAll(this.session, this.services);
      case 'cancel':
        this.services.jobs.cancelAll();
        return;
      case 'compareMethods':
        return compareCheckpointMethods(this.session, this.services);
      case 'exportCheckpoint':
        return exportQuantizedCheckpoint(this.session, this.services);
      case 'exportReport':
        return exportReport(this.session, this.services);
      case 'setCalibration':
        return this.hooks.setCalibration();
    }
  }

  private async sendAll(): Promise<void> {
    this.post({ type: 'loading', path: this.session.path });
    try {
      await this.session.ready;
    } catch {
      this.post({ type: 'error', error: this.session.error ?? { code: 'internal', message: 'cannot open' } });
      return;
    }
    const summary = this.session.summary!;
    this.post({ type: 'checkpoint', summary });
    this.push('settings');
    this.push('results');
    this.push('progress');
    this.push('comparison');
    this.push('allocation');
    this.push('allocationProgress');
  }

  private push(what: SessionChange): void {
    const s = this.session;
    // The summary itself goes out from sendAll, which waits for it when the webview says 'ready'.
    if (what === 'summary' || !s.summary) return;
    switch (what) {
      case 'settings':
        this.post({
          type: 'settings',
          settings: s.settings,
          methods: s.methodChoices(),
          calibration: this.services.calibration.label(),
        });
        this.post({ type: 'allocationSupport', support: allocationSupport(s, this.services) });
        break;
      case 'results':
        this.post({
          type: 'results',
          rank: s.settings.rank,
          rows: s.rows(),
          failures: s.failureRows(),
          totals: s.totals()!,
        });
        break;
      case 'progress':
        if (s.progress) this.post({ type: 'progress', progress: s.progress });
        break;
      case 'comparison':
        if (s.comparison) this.post({ type: 'comparison', comparison: s.comparison });
        break;
      case 'allocation':
        if (s.allocation) this.post({ type: 'allocation', allocation: s.allocation.curves, view: s.allocation.view });
        break;
      case 'allocationProgress':
        if (s.allocationProgress) this.post({ type: 'allocationProgress', progress: s.allocationProgress });
        break;
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
