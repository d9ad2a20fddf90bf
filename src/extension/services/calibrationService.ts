/**
 * The calibration source of the workspace (`quantLens.calibration`): which statistics file is in
 * use and what it holds per layer, so the panels can tell which methods can run and why not.
 */
import * as vscode from 'vscode';
import { basename } from 'node:path';
import { statsNameFor, type StatKind } from '../../engine/calibration/statKinds';
import type { CalibrationInfo } from '../../shared/workerProtocol';
import type { CalibrationLabel, UserFacingError } from '../../shared/protocol/common';
import { calibrationPath } from '../configuration';
import type { EngineService } from './engineService';
import { toUserFacingError } from '../errors';

const STAT_LABELS: Partial<Record<StatKind, string>> = {
  act_mean_abs: 'mean |x|',
  act_rms: 'RMS',
  act_gram: 'Gram',
};

export class CalibrationService implements vscode.Disposable {
  private info: CalibrationInfo | null = null;
  private problem: UserFacingError | null = null;
  private loading: Promise<void> = Promise.resolve();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly engine: EngineService) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('quantLens.calibration')) this.reload();
      }),
    );
    this.reload();
  }

  /** Settles once the current calibration source has been read (or failed to). */
  get ready(): Promise<void> {
    return this.loading;
  }

  /** The statistics file in use, when it could be read. */
  get path(): string | null {
    return this.info?.path ?? null;
  }

  /** The statistics file's metadata (producer, calibration_data, …), when one is in use. */
  get metadata(): Readonly<Record<string, string>> {
    return this.info?.metadata ?? {};
  }

  /** Why the configured file cannot be used, if it cannot. */
  get error(): UserFacingError | null {
    return this.problem;
  }

  reload(): void {
    const path = calibrationPath();
    this.loading = (async () => {
      this.info = null;
      this.problem = null;
      if (path) {
        try {
          this.info = await this.engine.pool.call('calibrationInfo', { path });
          this.engine.log.info(`calibration: ${path} (${Object.keys(this.info.layers).length} layers)`);
        } catch (e) {
          this.problem = toUserFacingError(e);
          this.engine.log.warn(`calibration ${path} cannot be used: ${this.problem.message}`);
          void vscode.window.showWarningMessage(`Quant Lens: calibration file cannot be used: ${this.problem.message}`);
        }
      }
      this.changed.fire();
    })().catch((e: unknown) => {
      // A listener failing must not leave a rejected promise for whoever awaits `ready`.
      this.engine.log.error(`calibration reload: ${String(e)}`);
    });
  }

  /** Statistics the file has for a layer; null without calibration (an empty set: calibrated, but not this layer). */
  statsFor(layer: string): ReadonlySet<StatKind> | null {
    if (!this.info) return null;
    return new Set(this.kindsOf(layer));
  }

  private kindsOf(layer: string): StatKind[] {
    const layers = this.info?.layers ?? {};
    const name = statsNameFor(Object.keys(layers), layer);
    return (name === undefined ? [] : (layers[name] ?? [])) as StatKind[];
  }

  /** Statistics any layer has, for checkpoint-wide choices. */
  statsForAny(layers: readonly string[]): ReadonlySet<StatKind> | null {
    if (!this.info) return null;
    const kinds = new Set<StatKind>();
    for (const l of layers) for (const k of this.kindsOf(l)) kinds.add(k);
    return kinds;
  }

  label(): CalibrationLabel | null {
    if (!this.info) return null;
    const layers = Object.values(this.info.layers);
    const kinds = new Set(layers.flat());
    const what = [...kinds].map((k) => STAT_LABELS[k as StatKind]).filter(Boolean);
    return {
      path: this.info.path,
      summary: `${basename(this.info.path)} · ${layers.length} layers${what.length ? ` · ${what.join(', ')}` : ''}`,
    };
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
