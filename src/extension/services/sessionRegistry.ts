/**
 * The open checkpoints. A session lives while an overview editor or a layer panel shows it; the
 * most recently focused one is "active": the Layers tree and the palette commands act on it.
 */
import * as vscode from 'vscode';
import { isMethodName } from '../../engine/methods/methods';
import { sanitizeSettings } from '../../shared/quantSettings';
import type { CalibrationService } from './calibrationService';
import { CheckpointSession, type SessionSettings } from './checkpointSession';
import { readDefaults } from '../configuration';
import type { EngineService } from './engineService';

interface Entry {
  session: CheckpointSession;
  holders: number;
}

const stateKey = (path: string) => `quantLens.settings:${path}`;

export class SessionRegistry implements vscode.Disposable {
  private readonly entries = new Map<string, Entry>();
  private activePath: string | undefined;
  private readonly activeChanged = new vscode.EventEmitter<CheckpointSession | undefined>();
  /** The active session changed (or the active session itself changed). */
  readonly onDidChangeActive = this.activeChanged.event;
  private readonly sessionSubscriptions = new Map<string, vscode.Disposable>();

  constructor(
    private readonly engine: EngineService,
    private readonly calibration: CalibrationService,
    private readonly memento: vscode.Memento,
  ) {}

  get active(): CheckpointSession | undefined {
    return this.activePath ? this.entries.get(this.activePath)?.session : undefined;
  }

  get all(): CheckpointSession[] {
    return [...this.entries.values()].map((e) => e.session);
  }

  get(path: string): CheckpointSession | undefined {
    return this.entries.get(path)?.session;
  }

  /** The session of a checkpoint, created on first use; release the returned disposable when done. */
  acquire(uri: vscode.Uri): { session: CheckpointSession; release: vscode.Disposable } {
    const path = uri.fsPath;
    let entry = this.entries.get(path);
    if (!entry) {
      const session = new CheckpointSession(
        uri,
        this.engine,
        this.calibration,
        () => this.initialSettings(path),
        (saved) => void this.memento.update(stateKey(path), saved),
      );
      entry = { session, holders: 0 };
      this.entries.set(path, entry);
      this.sessionSubscriptions.set(
        path,
        session.onDidChange((what) => {
          if (
            this.activePath === path &&
            what !== 'progress' &&
            what !== 'methodComparison' &&
            what !== 'allocation' &&
            what !== 'allocationProgress'
          )
            this.activeChanged.fire(session);
        }),
      );
      this.updateContext();
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      session: entry.session,
      release: {
        dispose: () => {
          if (released) return;
          released = true;
          held.holders--;
          if (held.holders === 0) this.remove(path);
        },
      },
    };
  }

  private remove(path: string): void {
    const entry = this.entries.get(path);
    if (!entry) return;
    this.entries.delete(path);
    this.sessionSubscriptions.get(path)?.dispose();
    this.sessionSubscriptions.delete(path);
    entry.session.dispose();
    if (this.activePath === path) {
      this.activePath = this.entries.keys().next().value;
      this.activeChanged.fire(this.active);
    }
    this.updateContext();
  }

  setActive(session: CheckpointSession): void {
    if (this.activePath === session.path) return;
    this.activePath = session.path;
    this.activeChanged.fire(session);
    this.updateContext();
  }

  /** The checkpoint's settings as last left (older states saved the settings alone), else the defaults. */
  private initialSettings(path: string): SessionSettings {
    const defaults = readDefaults();
    const saved = this.memento.get<unknown>(stateKey(path));
    if (saved && typeof saved === 'object' && 'settings' in saved) {
      const { settings, method } = saved as { settings: unknown; method: unknown };
      return {
        settings: sanitizeSettings(settings, defaults.settings),
        method: typeof method === 'string' && (method === 'auto' || isMethodName(method)) ? method : defaults.method,
      };
    }
    if (saved) {
      const settings = sanitizeSettings(saved, defaults.settings);
      return { settings, method: settings.method };
    }
    return { settings: defaults.settings, method: defaults.method };
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', 'quantLens.hasCheckpoint', this.entries.size > 0);
  }

  dispose(): void {
    for (const s of this.sessionSubscriptions.values()) s.dispose();
    for (const e of this.entries.values()) e.session.dispose();
    this.entries.clear();
    this.activeChanged.dispose();
  }
}
