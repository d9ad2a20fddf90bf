/**
 * The checkpoint overview as a custom read-only editor: the default editor for *.safetensors and
 * *.gguf, offered through "Open With…" for the other checkpoint files. Each editor binds one
 * webview to the checkpoint's session; several editors of one file share that session.
 */
import * as vscode from 'vscode';
import { sanitizeSettings } from '../../shared/quantSettings';
import {
  type HostToOverview,
  type OverviewToHost,
  OVERVIEW_OPTIONAL_VIEW_TYPE,
  OVERVIEW_VIEW_TYPE,
} from '../../shared/protocol/overview';
import {
  analyzeAll,
  compareCheckpointMethods,
  exportQuantizedCheckpoint,
  exportReport,
  type Services,
} from '../commands/checkpointCommands';
import { allocationSupport, computeAllocation, exportRecipe, exportWithRecipe } from '../commands/allocationCommands';
import type { CheckpointSession, SessionChange } from '../services/checkpointSession';
import { isCancellation, toUserFacingError } from '../errors';
import { sanitizeAllocationRequest, sanitizeAllocationGoal } from '../../shared/protocol/overview';
import type { Reporter } from '../logging';
import type { SessionRegistry } from '../services/sessionRegistry';
import { PanelConnection } from './webviewPanels';

export interface OverviewHooks {
  openLayer(session: CheckpointSession, layer: string): void;
  setCalibration(): Promise<void>;
}

class CheckpointDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

export class OverviewEditorProvider implements vscode.CustomReadonlyEditorProvider<CheckpointDocument> {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly sessions: SessionRegistry,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: OverviewHooks,
  ) {}

  static register(provider: OverviewEditorProvider): vscode.Disposable[] {
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
    new OverviewEditor(
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
class OverviewEditor {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly connection: PanelConnection<HostToOverview, OverviewToHost>;

  constructor(
    panel: vscode.WebviewPanel,
    private readonly session: CheckpointSession,
    release: vscode.Disposable,
    extensionUri: vscode.Uri,
    sessions: SessionRegistry,
    private readonly services: Services,
    reporter: Reporter,
    private readonly hooks: OverviewHooks,
  ) {
    this.connection = new PanelConnection<HostToOverview, OverviewToHost>(panel, {
      extensionUri,
      entry: 'overview',
      title: session.name,
      ownsTab: false,
      reporter,
      onMessage: (m) => this.onMessage(m),
      onDispose: () => this.dispose(),
      describe: (m) => (m.type === 'command' ? m.command : m.type),
    });
    if (panel.active) sessions.setActive(session);
    this.disposables.push(
      release,
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.active) sessions.setActive(session);
      }),
      session.onDidChange((what) => this.push(what)),
    );
  }

  private post(msg: HostToOverview): void {
    this.connection.post(msg);
  }

  private async onMessage(msg: OverviewToHost): Promise<void> {
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
        const view = sanitizeAllocationGoal(msg.view);
        if (view) this.session.setAllocationGoal(view);
        break;
      }
      case 'exportRecipe':
        await exportRecipe(this.session, this.services, msg.view);
        break;
      case 'exportWithRecipe':
        await exportWithRecipe(this.session, this.services, msg.view);
        break;
    }
  }

  /** Runs the allocation job; a failure shows in the section as well as in a notification. */
  private async computeAllocation(raw: unknown, view: unknown): Promise<void> {
    try {
      await computeAllocation(this.session, this.services, raw, sanitizeAllocationGoal(view));
    } catch (e) {
      const request = sanitizeAllocationRequest(raw);
      if (request && !isCancellation(e)) this.post({ type: 'allocationFailed', request, error: toUserFacingError(e) });
      throw e;
    }
  }

  private async run(command: Extract<OverviewToHost, { type: 'command' }>['command']): Promise<void> {
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
    this.push('methodComparison');
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
      case 'methodComparison':
        if (s.methodComparison) this.post({ type: 'methodComparison', comparison: s.methodComparison });
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
    this.connection.dispose();
  }
}
