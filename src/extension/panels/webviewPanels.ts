/**
 * The lifecycle every Quant Lens webview panel shares, written once: the HTML shell and options, a
 * typed `post`, message dispatch with failures reported, one panel per thing shown (show or reveal),
 * revival after a window reload from the webview's saved state (or an error in the panel when the
 * state names nothing), "newest run wins" cancellation and throttled progress. A panel kind gives
 * its view type, its webview entry, how to parse its saved state and how to build its controller.
 */
import * as vscode from 'vscode';
import type { UserFacingError } from '../../shared/protocol/common';
import type { Reporter } from '../logging';
import { webviewHtml, webviewOptions } from './webviewHtml';
import type { RevivablePanelViewType } from '../../shared/protocol/panelTypes';

/** At most this many progress messages per second reach a webview (the last one always goes). */
export const PROGRESS_INTERVAL_MS = 100;

/** Every panel's messages carry a `type`; every webview says `ready` when it (re)loads. */
export interface PanelMessage {
  readonly type: string;
}

/**
 * One webview bound to its controller: sets up the webview, posts typed messages (a hidden webview
 * drops them; it says `ready` again when shown) and hands incoming ones to `onMessage`, reporting
 * what it throws. Disposed with the panel.
 */
export interface ConnectionOptions<ToHost extends PanelMessage> {
  extensionUri: vscode.Uri;
  /** Its webview entry: webview/<entry>.entry.ts. */
  entry: string;
  /** The HTML document's title. */
  title: string;
  /** Also the tab's title, with the extension's icon (not for custom editors, whose tab is the file's). */
  ownsTab: boolean;
  reporter: Reporter;
  onMessage(msg: ToHost): Promise<void> | void;
  /** Called once when the panel is closed. */
  onDispose?(): void;
  /** What a failed message is called in the report; default "<entry> panel (<type>)". */
  describe?(msg: ToHost): string;
}

export class PanelConnection<ToWebview extends PanelMessage, ToHost extends PanelMessage> implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    o: ConnectionOptions<ToHost>,
  ) {
    if (o.ownsTab) {
      panel.title = o.title;
      panel.iconPath = vscode.Uri.joinPath(o.extensionUri, 'media', 'icon.png');
    }
    panel.webview.options = webviewOptions(o.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, o.extensionUri, o.entry, o.title);
    this.disposables.push(
      panel.webview.onDidReceiveMessage(async (msg: ToHost) => {
        try {
          await o.onMessage(msg);
        } catch (e) {
          o.reporter.fail(o.describe?.(msg) ?? `${o.entry} panel (${msg.type})`, e);
        }
      }),
      panel.onDidDispose(() => {
        o.onDispose?.();
        this.dispose();
      }),
    );
  }

  post(msg: ToWebview): void {
    void this.panel.webview.postMessage(msg).then(undefined, () => undefined);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

/**
 * "Newest run wins": starting a run aborts the one before it, and a run that finishes after it was
 * superseded knows it (`isCurrent`) and leaves the panel to the newer one.
 */
export class LatestRun {
  private current: AbortController | undefined;

  start(): AbortController {
    this.current?.abort();
    this.current = new AbortController();
    return this.current;
  }

  isCurrent(run: AbortController): boolean {
    return this.current === run;
  }

  /** Whether any run is going on. */
  get running(): boolean {
    return this.current !== undefined;
  }

  /** Forgets the run when it is still the current one (call in `finally`). */
  finish(run: AbortController): void {
    if (this.current === run) this.current = undefined;
  }

  abort(): void {
    this.current?.abort();
  }
}

/**
 * Calls `send` at most every PROGRESS_INTERVAL_MS; `force` (the first and the last update) always
 * goes through.
 */
export function throttled<T>(send: (value: T) => void): (value: T, force?: boolean) => void {
  let last = 0;
  return (value, force = false) => {
    const now = Date.now();
    if (!force && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    send(value);
  };
}

/** A panel controller as the manager sees it. */
export interface ManagedPanel extends vscode.Disposable {
  reveal(column?: vscode.ViewColumn): void;
}

/** What a panel kind tells its manager. `Target` is what one panel shows (a layer, a pair of files). */
export interface PanelKind<Target, Panel extends ManagedPanel> {
  /** One of the revivable view types (package.json activates the extension for each). */
  viewType: RevivablePanelViewType;
  /** Its webview entry: webview/<entry>.entry.ts. */
  entry: string;
  /** One panel per key. */
  key(target: Target): string;
  /** The tab's title before the controller sets its own. */
  title(target: Target): string;
  /** The target a saved state names, or null when it names none. */
  parseState(state: unknown): Target | null;
  /** What the panel says when its saved state names nothing to show. */
  unrestorable: string;
  /** Builds the controller for a new or revived webview panel. */
  create(panel: vscode.WebviewPanel, target: Target): Panel;
}

export class WebviewPanels<Target, Panel extends ManagedPanel> implements vscode.Disposable {
  private readonly open = new Map<string, Panel>();
  private lastFocused: Panel | undefined;

  constructor(
    private readonly kind: PanelKind<Target, Panel>,
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    /** Called when one of its panels gains focus. */
    private readonly onFocus: (panel: Panel) => void = () => undefined,
  ) {}

  /** The focused panel of this kind, if one is focused. */
  get active(): Panel | undefined {
    return this.lastFocused && this.isActive(this.lastFocused) ? this.lastFocused : undefined;
  }

  private readonly webviews = new Map<Panel, vscode.WebviewPanel>();

  private isActive(p: Panel): boolean {
    return this.webviews.get(p)?.active ?? false;
  }

  /** The serializer that brings the panels back after a window reload. */
  register(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(this.kind.viewType, {
      deserializeWebviewPanel: async (panel, state) => this.revive(panel, state),
    });
  }

  /** Reveals the panel showing `target`, or opens one. */
  show(target: Target, column: vscode.ViewColumn = vscode.ViewColumn.Active): void {
    const existing = this.open.get(this.kind.key(target));
    if (existing) {
      existing.reveal(column);
      return;
    }
    const panel = vscode.window.createWebviewPanel(this.kind.viewType, this.kind.title(target), column, {
      ...webviewOptions(this.extensionUri),
      retainContextWhenHidden: false,
    });
    this.adopt(panel, target);
  }

  private revive(panel: vscode.WebviewPanel, state: unknown): void {
    const target = this.kind.parseState(state);
    if (!target) {
      this.log.info(`cannot restore a ${this.kind.entry} panel from ${JSON.stringify(state)}`);
      this.showUnrestorable(panel);
      return;
    }
    this.log.info(`restoring the ${this.kind.entry} panel of ${this.kind.key(target).replace(/\n/g, ' · ')}`);
    const existing = this.open.get(this.kind.key(target));
    if (existing) {
      // Two restored panels for one target: keep the first.
      panel.dispose();
      existing.reveal();
      return;
    }
    this.adopt(panel, target);
  }

  private showUnrestorable(panel: vscode.WebviewPanel): void {
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, this.kind.entry, panel.title);
    const error: UserFacingError = { code: 'internal', message: this.kind.unrestorable };
    const sub = panel.webview.onDidReceiveMessage((m: PanelMessage) => {
      if (m.type === 'ready') void panel.webview.postMessage({ type: 'error', error });
    });
    panel.onDidDispose(() => sub.dispose());
  }

  private adopt(panel: vscode.WebviewPanel, target: Target): void {
    const key = this.kind.key(target);
    const p = this.kind.create(panel, target);
    this.open.set(key, p);
    this.webviews.set(p, panel);
    this.lastFocused = p;
    panel.onDidChangeViewState((e) => {
      if (e.webviewPanel.active) {
        this.lastFocused = p;
        this.onFocus(p);
      }
    });
    panel.onDidDispose(() => {
      if (this.open.get(key) === p) this.open.delete(key);
      this.webviews.delete(p);
      if (this.lastFocused === p) this.lastFocused = undefined;
    });
    if (panel.active) this.onFocus(p);
  }

  dispose(): void {
    for (const p of [...this.open.values()]) p.dispose();
  }
}
