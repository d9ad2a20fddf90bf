/**
 * One open checkpoint: its summary, the settings its overview and tree show (the "current"
 * settings), and the results at those settings as they arrive from any analysis in the session.
 * Overview editors, layer panels and the tree all read from here.
 */
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { StatKind } from '../../engine/calibration/statKinds';
import type { LayerAnalysis } from '../../engine/methods/layerAnalysis';
import type { CheckpointSummary, LinearLayer } from '../../shared/checkpointSummary';
import {
  describeSettings,
  methodChoices,
  sameAnalysis,
  methodFor,
  preferenceAfter,
  toAnalysisSettings,
  type MethodPreference,
  type QuantSettings,
} from '../../shared/quantSettings';
import type {
  AllocationCurves,
  AllocationGoal,
  LayerFailureRow,
  LayerResultRow,
  ModelTotals,
} from '../../shared/protocol/overview';
import type { JobProgress, MethodChoice, MethodComparison, UserFacingError } from '../../shared/protocol/common';
import type { CalibrationService } from './calibrationService';
import type { AnalysisRequest, EngineService } from './engineService';
import { toUserFacingError } from '../errors';
import { layersToAnalyse } from '../views/layerGroups';
import { modelTotals, resultRow } from './modelResults';

/**
 * The settings a session starts with. `method` is what the user asked for: 'auto' (L²QER with
 * calibration, LQER without) is resolved again whenever the calibration changes; a method the
 * user picked stays, unless the statistics cannot support it.
 */
export interface SessionSettings {
  settings: QuantSettings;
  method: MethodPreference;
}
export type InitialSettings = () => SessionSettings;

export type SessionChange =
  'summary' | 'settings' | 'results' | 'progress' | 'methodComparison' | 'allocation' | 'allocationProgress';

/** The rank allocation of a checkpoint: the worker's curves, and the budget and objective shown. */
export interface StoredAllocation {
  curves: AllocationCurves;
  view: AllocationGoal;
}

export class CheckpointSession implements vscode.Disposable {
  readonly name: string;
  private summaryValue: CheckpointSummary | undefined;
  private errorValue: UserFacingError | undefined;
  readonly ready: Promise<CheckpointSummary>;
  private settingsValue: QuantSettings;
  private methodPreference: MethodPreference;
  private readonly results = new Map<string, LayerAnalysis>();
  private readonly failures = new Map<string, UserFacingError>();
  private progressValue: JobProgress | null = null;
  private comparisonValue: MethodComparison | null = null;
  private allocationValue: StoredAllocation | null = null;
  private allocationProgressValue: JobProgress | null = null;
  private readonly changed = new vscode.EventEmitter<SessionChange>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(
    readonly uri: vscode.Uri,
    private readonly engine: EngineService,
    private readonly calibration: CalibrationService,
    initial: InitialSettings,
    private readonly persist: (saved: SessionSettings) => void,
  ) {
    this.name = basename(uri.fsPath);
    const start = initial();
    this.methodPreference = start.method;
    this.settingsValue = { ...start.settings, method: methodFor(this.methodPreference, null) };
    this.ready = this.open();
    // A failed open is shown by whoever displays the session; nobody else awaits it.
    this.ready.catch(() => undefined);
    this.disposables.push(
      engine.onDidStoreAnalysis((s) => {
        if (s.checkpoint !== this.path || !this.summaryValue) return;
        const layer = this.layer(s.layer);
        if (!layer || engine.keyOf(this.request(layer)) !== s.key) return;
        this.results.set(layer.name, s.analysis);
        this.failures.delete(layer.name);
        this.changed.fire('results');
      }),
      calibration.onDidChange(() => {
        if (!this.summaryValue) return;
        this.settingsValue = { ...this.settingsValue, method: methodFor(this.methodPreference, this.statsForAny()) };
        this.refreshFromCache();
        this.changed.fire('settings');
      }),
    );
  }

  get path(): string {
    return this.uri.fsPath;
  }

  private async open(): Promise<CheckpointSummary> {
    const t0 = Date.now();
    try {
      const summary = await this.engine.pool.call('openCheckpoint', { path: this.path });
      await this.calibration.ready;
      this.summaryValue = summary;
      this.settingsValue = { ...this.settingsValue, method: methodFor(this.methodPreference, this.statsForAny()) };
      this.engine.log.info(
        `opened ${this.path}: ${summary.format}, ${summary.tensors.length} tensors, ${summary.linearLayers.length} linear layers in ${Date.now() - t0} ms`,
      );
      this.refreshFromCache();
      this.changed.fire('summary');
      return summary;
    } catch (e) {
      this.errorValue = toUserFacingError(e);
      this.engine.log.warn(`cannot open ${this.path}: ${this.errorValue.message}`);
      this.changed.fire('summary');
      throw e;
    }
  }

  get summary(): CheckpointSummary | undefined {
    return this.summaryValue;
  }

  get error(): UserFacingError | undefined {
    return this.errorValue;
  }

  get settings(): QuantSettings {
    return this.settingsValue;
  }

  get progress(): JobProgress | null {
    return this.progressValue;
  }

  get methodComparison(): MethodComparison | null {
    return this.comparisonValue;
  }

  get linearLayers(): readonly LinearLayer[] {
    return this.summaryValue?.linearLayers ?? [];
  }

  /** The layers "analyse all", totals, comparisons and exports cover. */
  get quantizedLayers(): LinearLayer[] {
    return layersToAnalyse(this.linearLayers);
  }

  layer(name: string): LinearLayer | undefined {
    return this.linearLayers.find((l) => l.name === name);
  }

  statsForAny(): ReadonlySet<StatKind> | null {
    return this.calibration.statsForAny(this.quantizedLayers.map((l) => l.name));
  }

  methodChoices(): MethodChoice[] {
    return methodChoices(this.statsForAny());
  }

  /** The worker request for a layer at the given settings (the session's by default). */
  request(layer: LinearLayer, settings: QuantSettings = this.settingsValue, spectra = true): AnalysisRequest {
    const s = toAnalysisSettings(settings, layer.shape);
    return {
      checkpoint: this.path,
      layer: layer.name,
      settings: spectra ? s : { ...s, spectra: false, maxRank: Math.min(s.maxRank, settings.rank) },
      calibration: this.calibration.path,
    };
  }

  setSettings(next: QuantSettings): void {
    this.methodPreference = preferenceAfter(this.methodPreference, this.settingsValue.method, next.method);
    const settings = { ...next, method: methodFor(this.methodPreference, this.statsForAny()) };
    const analysisChanged = !sameAnalysis(settings, this.settingsValue);
    this.settingsValue = settings;
    this.persist({ settings, method: this.methodPreference });
    if (analysisChanged) this.refreshFromCache();
    this.changed.fire('settings');
    this.changed.fire('results');
  }

  /**
   * Rebuilds the results at the current settings from whatever the session cache holds, then adds
   * what the result store holds (what was analysed before a reload, or in another window).
   */
  private refreshFromCache(): void {
    this.results.clear();
    this.failures.clear();
    for (const l of this.linearLayers) {
      const a = this.engine.peek(this.request(l));
      if (a) this.results.set(l.name, a);
    }
    this.loadFromStore().catch((e: unknown) =>
      this.engine.log.warn(`${this.name}: reading the result store failed: ${toUserFacingError(e).message}`),
    );
  }

  /**
   * The layers the result store holds at the current settings, shown as if just analysed (they
   * arrive through the engine's onDidStoreAnalysis). `hashUnknown`: for a store computed elsewhere,
   * read and hash the weights to find them (see EngineService.loadStored).
   */
  async loadFromStore(
    opts: { hashUnknown?: boolean; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<number> {
    if (!this.summaryValue) return 0;
    const t0 = Date.now();
    const { found, asked } = await this.engine.loadStored(
      this.quantizedLayers.map((l) => this.request(l)),
      opts,
    );
    if (asked) {
      this.engine.log.info(
        `${this.name}: ${found} of ${asked} layers from the result store in ${Date.now() - t0} ms [${describeSettings(this.settingsValue)}]`,
      );
    }
    return found;
  }

  recordFailure(layer: string, error: UserFacingError): void {
    this.failures.set(layer, error);
    this.changed.fire('results');
  }

  setProgress(p: JobProgress | null): void {
    this.progressValue = p;
    this.changed.fire('progress');
  }

  setMethodComparison(c: MethodComparison): void {
    this.comparisonValue = c;
    this.changed.fire('methodComparison');
  }

  get allocation(): StoredAllocation | null {
    return this.allocationValue;
  }

  get allocationProgress(): JobProgress | null {
    return this.allocationProgressValue;
  }

  setAllocation(a: StoredAllocation): void {
    this.allocationValue = a;
    this.changed.fire('allocation');
  }

  /** The budget or objective moved in an overview; the others showing this checkpoint follow. */
  setAllocationGoal(view: AllocationGoal): void {
    if (!this.allocationValue) return;
    this.allocationValue = { ...this.allocationValue, view };
  }

  setAllocationProgress(p: JobProgress | null): void {
    this.allocationProgressValue = p;
    this.changed.fire('allocationProgress');
  }

  analysis(layer: string): LayerAnalysis | undefined {
    return this.results.get(layer);
  }

  analysedLayers(): LayerAnalysis[] {
    return this.linearLayers.map((l) => this.results.get(l.name)).filter((a): a is LayerAnalysis => !!a);
  }

  rows(): LayerResultRow[] {
    return this.analysedLayers().map((a) => resultRow(a, this.settingsValue.rank));
  }

  row(layer: string): LayerResultRow | undefined {
    const a = this.results.get(layer);
    return a ? resultRow(a, this.settingsValue.rank) : undefined;
  }

  failureRows(): LayerFailureRow[] {
    return [...this.failures].map(([name, error]) => ({ name, error }));
  }

  failure(layer: string): UserFacingError | undefined {
    return this.failures.get(layer);
  }

  totals(): ModelTotals | null {
    if (!this.summaryValue) return null;
    const quantized = new Set(this.quantizedLayers.map((l) => l.name));
    const rows = this.rows().filter((r) => quantized.has(r.name));
    return modelTotals(this.summaryValue, this.quantizedLayers, this.settingsValue, rows);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
