/**
 * The layer panel: one WebviewPanel per (checkpoint, layer), each with its own settings (they start
 * from the checkpoint's). A rank change costs the host nothing — the webview derives every metric
 * from the curves it already has; a method or format change asks the worker (or the session cache)
 * for a new analysis while the old one stays on screen. Its reassembly and fitted-step sections run
 * through ReassemblyService and StepFitService. Panels come back after a reload (WebviewPanels).
 */
import * as vscode from 'vscode';
import { appliedRank } from '../../engine/methods/methods';
import type { LinearLayer } from '../../shared/checkpointSummary';
import { shortLayerName } from '../../shared/formatting';
import {
  DEFAULT_REASSEMBLY_OPTIONS,
  LAYER_VIEW_TYPE,
  parseLayerPanelState,
  sanitizeReassemblyOptions,
  type HostToLayer,
  type LayerToHost,
  type ReassemblyUiOptions,
} from '../../shared/protocol/layer';
import {
  fittedStepsApply,
  methodChoices,
  sameAnalysis,
  sanitizeSettings,
  sliderMaxRank,
  usableMethod,
  type QuantSettings,
} from '../../shared/quantSettings';
import { compareMethods, type Services } from '../commands/checkpointCommands';
import { isCancellation, toUserFacingError } from '../errors';
import type { Reporter } from '../logging';
import type { CheckpointSession } from '../services/checkpointSession';
import { ReassemblyService } from '../services/reassemblyService';
import type { SessionRegistry } from '../services/sessionRegistry';
import { StepFitService } from '../services/stepFitService';
import { LatestRun, PanelConnection, WebviewPanels, throttled } from './webviewPanels';

export interface LayerPanelHooks {
  openOverview(session: CheckpointSession): Promise<void>;
}

/** From this min(out, in) on, a layer's analysis arrives in stages (first numbers, then the rest). */
const PROGRESSIVE_MIN_ORDER = 512;

interface LayerTarget {
  checkpoint: string;
  layer: string;
  settings: QuantSettings;
}

/** The layer panels, one per (checkpoint, layer). */
export class LayerPanels implements vscode.Disposable {
  private readonly panels: WebviewPanels<LayerTarget, LayerPanel>;
  private readonly reassembly: ReassemblyService;
  private readonly stepFits: StepFitService;

  constructor(
    extensionUri: vscode.Uri,
    sessions: SessionRegistry,
    services: Services,
    reporter: Reporter,
    hooks: LayerPanelHooks,
  ) {
    this.reassembly = new ReassemblyService(services.engine, services.calibration, services.jobs);
    this.stepFits = new StepFitService(services.engine, services.calibration, services.jobs);
    this.panels = new WebviewPanels<LayerTarget, LayerPanel>(
      {
        viewType: LAYER_VIEW_TYPE,
        entry: 'layer',
        key: (t) => `${t.checkpoint}\n${t.layer}`,
        title: (t) => shortLayerName(t.layer),
        parseState: (state) => parseLayerPanelState(state),
        unrestorable:
          'This panel could not be restored: its saved state names no layer. Close it and open the layer again.',
        create: (panel, t) => {
          const { session, release } = sessions.acquire(vscode.Uri.file(t.checkpoint));
          return new LayerPanel(panel, session, release, t.layer, t.settings, extensionUri, {
            services,
            reporter,
            hooks,
            reassembly: this.reassembly,
            stepFits: this.stepFits,
          });
        },
      },
      extensionUri,
      services.engine.log,
      (p) => sessions.setActive(p.session),
    );
  }

  /** The focused layer panel, if one is focused. */
  get active(): LayerPanel | undefined {
    return this.panels.active;
  }

  register(): vscode.Disposable {
    return this.panels.register();
  }

  show(session: CheckpointSession, layer: string, column: vscode.ViewColumn = vscode.ViewColumn.Active): void {
    this.panels.show({ checkpoint: session.path, layer, settings: session.settings }, column);
  }

  dispose(): void {
    this.panels.dispose();
    this.reassembly.dispose();
    this.stepFits.dispose();
  }
}

interface LayerPanelDeps {
  services: Services;
  reporter: Reporter;
  hooks: LayerPanelHooks;
  reassembly: ReassemblyService;
  stepFits: StepFitService;
}

export class LayerPanel implements vscode.Disposable {
  private settings: QuantSettings;
  private layer: LinearLayer | undefined;
  private readonly computation = new LatestRun();
  private readonly reassemblyRun = new LatestRun();
  private readonly stepFitRun = new LatestRun();
  private readonly connection: PanelConnection<HostToLayer, LayerToHost>;
  private readonly services: Services;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly panel: vscode.WebviewPanel,
    readonly session: CheckpointSession,
    release: vscode.Disposable,
    readonly layerName: string,
    settings: QuantSettings,
    extensionUri: vscode.Uri,
    private readonly deps: LayerPanelDeps,
  ) {
    this.settings = settings;
    this.services = deps.services;
    this.connection = new PanelConnection<HostToLayer, LayerToHost>(panel, {
      extensionUri,
      entry: 'layer',
      title: shortLayerName(layerName),
      ownsTab: true,
      reporter: deps.reporter,
      onMessage: (m) => this.onMessage(m),
      onDispose: () => this.dispose(),
    });
    this.disposables.push(
      release,
      this.services.calibration.onDidChange(() => void this.onCalibrationChanged()),
    );
  }

  get isActive(): boolean {
    return this.panel.active;
  }

  get currentSettings(): QuantSettings {
    return this.settings;
  }

  reveal(column?: vscode.ViewColumn): void {
    this.panel.reveal(column);
  }

  private post(msg: HostToLayer): void {
    this.connection.post(msg);
  }

  private stats(): ReturnType<Services['calibration']['statsFor']> {
    return this.services.calibration.statsFor(this.layerName);
  }

  private async onMessage(msg: LayerToHost): Promise<void> {
    switch (msg.type) {
      case 'ready':
        await this.setup();
        break;
      case 'setSettings': {
        const next = sanitizeSettings(msg.settings, this.settings);
        const recompute = !sameAnalysis(next, this.settings);
        this.settings = { ...next, method: usableMethod(next.method, this.stats()) };
        if (recompute) await this.compute();
        break;
      }
      case 'rank':
        if (Number.isFinite(msg.rank)) this.settings = { ...this.settings, rank: Math.max(0, Math.round(msg.rank)) };
        break;
      case 'compareMethods':
        await this.compareMethods();
        break;
      case 'cancel':
        this.computation.abort();
        break;
      case 'openOverview':
        await this.deps.hooks.openOverview(this.session);
        break;
      case 'reassemble':
        await this.reassemble(sanitizeReassemblyOptions(msg.options, DEFAULT_REASSEMBLY_OPTIONS));
        break;
      case 'cancelReassembly':
        this.reassemblyRun.abort();
        break;
      case 'compareStepFit':
        await this.compareStepFit(sanitizeSettings(msg.settings, this.settings), msg.rank);
        break;
    }
  }

  private async setup(): Promise<void> {
    try {
      await this.session.ready;
    } catch {
      this.post({
        type: 'error',
        error: this.session.error ?? { code: 'internal', message: 'cannot open the checkpoint' },
      });
      return;
    }
    const layer = this.session.layer(this.layerName);
    if (!layer) {
      this.post({
        type: 'error',
        error: {
          code: 'not-found',
          message: `${this.session.name} has no linear layer "${this.layerName}" (any more).`,
          file: this.session.path,
        },
      });
      return;
    }
    this.layer = layer;
    this.settings = { ...this.settings, method: usableMethod(this.settings.method, this.stats()) };
    this.post({
      type: 'setup',
      setup: {
        checkpoint: this.session.path,
        checkpointName: this.session.name,
        layer,
        settings: this.settings,
        methods: methodChoices(this.stats()),
        calibration: this.services.calibration.label(),
        maxRank: sliderMaxRank(layer.shape),
      },
    });
    void this.sendReassemblySupport();
    await this.compute();
  }

  /** Tells the panel whether the reassembly of its site can run, and with what. */
  private async sendReassemblySupport(): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    try {
      this.post({
        type: 'reassemblySupport',
        support: await this.deps.reassembly.support(this.session.path, layer.name),
      });
    } catch (e) {
      this.post({
        type: 'reassemblySupport',
        support: {
          site: null,
          status: 'no-site',
          message: `Cannot find this layer's input site: ${toUserFacingError(e).message}`,
        },
      });
      this.deps.reporter.fail(`reassembly sites of ${this.session.name}`, e, false);
    }
  }

  /** QLLM channel reassembly of the layer's site, in the worker, under a cancellable notification. */
  private async reassemble(options: ReassemblyUiOptions): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    const { reassembly } = this.deps;
    const support = await reassembly.support(this.session.path, layer.name);
    this.post({ type: 'reassemblySupport', support });
    const site = support.site;
    if (support.status !== 'ready' || !site) {
      this.post({ type: 'reassemblyFailed', options, error: { code: 'needs-calibration', message: support.message } });
      return;
    }
    const cached = reassembly.peek(this.session.path, site, options, this.settings);
    if (cached) {
      this.post({ type: 'reassembly', options, result: cached, timeMs: 0, cached: true });
      return;
    }
    const run = this.reassemblyRun.start();
    const t0 = Date.now();
    this.post({ type: 'reassembling', options, elapsedMs: 0 });
    const timer = setInterval(() => this.post({ type: 'reassembling', options, elapsedMs: Date.now() - t0 }), 1000);
    try {
      const r = await reassembly.runWithProgress(this.session.path, site, options, this.settings, run.signal);
      if (!this.reassemblyRun.isCurrent(run)) return;
      if (r) this.post({ type: 'reassembly', options, result: r.result, timeMs: r.timeMs, cached: r.cached });
      else this.post({ type: 'reassemblyFailed', options, error: { code: 'cancelled', message: 'cancelled' } });
    } catch (e) {
      if (!this.reassemblyRun.isCurrent(run)) return;
      this.post({ type: 'reassemblyFailed', options, error: toUserFacingError(e) });
      if (!isCancellation(e)) this.deps.reporter.fail(`reassembly of ${site.site}`, e, false);
    } finally {
      clearInterval(timer);
      this.reassemblyRun.finish(run);
    }
  }

  /** Fitted against min/max step sizes at `rank`, alone and with the panel's method on top. */
  private async compareStepFit(settings: QuantSettings, rank: number): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    const k = appliedRank(settings.method, Math.max(0, Math.min(sliderMaxRank(layer.shape), Math.round(rank))));
    if (!fittedStepsApply(settings.weightFormat)) {
      this.post({
        type: 'stepFitFailed',
        settings,
        rank: k,
        error: { code: 'bad-argument', message: 'fitted step sizes apply to the INT formats only' },
      });
      return;
    }
    const hit = this.deps.stepFits.peek(this.session.path, layer.name, settings, k);
    if (hit) {
      this.post({ type: 'stepFit', settings, rank: k, comparison: hit });
      return;
    }
    const run = this.stepFitRun.start();
    this.post({ type: 'stepFitComputing', settings, rank: k });
    try {
      const comparison = await this.deps.stepFits.compare(this.session.path, layer, settings, k, run);
      if (this.stepFitRun.isCurrent(run)) this.post({ type: 'stepFit', settings, rank: k, comparison });
    } catch (e) {
      if (!this.stepFitRun.isCurrent(run) && isCancellation(e)) return;
      this.post({ type: 'stepFitFailed', settings, rank: k, error: toUserFacingError(e) });
      if (!isCancellation(e)) this.deps.reporter.fail(`fitted step sizes of ${layer.name}`, e, false);
    } finally {
      this.stepFitRun.finish(run);
    }
  }

  private async onCalibrationChanged(): Promise<void> {
    if (!this.layer) return;
    try {
      this.settings = { ...this.settings, method: usableMethod(this.settings.method, this.stats()) };
      this.post({
        type: 'methods',
        methods: methodChoices(this.stats()),
        calibration: this.services.calibration.label(),
      });
      void this.sendReassemblySupport();
      await this.compute();
    } catch (e) {
      this.deps.reporter.fail('layer panel (calibration)', e);
    }
  }

  /** Asks for the analysis at the panel's settings; a newer request supersedes an older one. */
  private async compute(): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    const controller = this.computation.start();
    const settings = this.settings;
    const request = this.session.request(layer, settings);
    const tracked = this.services.jobs.track(controller);
    const progress = throttled((p: { fraction: number; step: string }) =>
      this.post({ type: 'computing', settings, fraction: p.fraction, step: p.step }),
    );
    try {
      if (!this.services.engine.peek(request)) this.post({ type: 'computing', settings, fraction: 0, step: 'queued' });
      const started = Date.now();
      const outcome = await this.services.engine.analyze(request, {
        signal: controller.signal,
        // Small layers are analysed in well under a second: first numbers would only flicker.
        ...(Math.min(...layer.shape) >= PROGRESSIVE_MIN_ORDER ? { firstRank: this.settings.rank } : {}),
        onProgress: (p) => {
          if (p.partial) {
            // First numbers (and then the full curves) while the rest is computed: never throttled.
            if (this.computation.isCurrent(controller))
              this.post({
                type: 'analysis',
                settings,
                analysis: p.partial,
                cached: false,
                timeMs: Date.now() - started,
              });
            return;
          }
          progress(p);
        },
      });
      if (!this.computation.isCurrent(controller)) return;
      this.post({
        type: 'analysis',
        settings,
        analysis: outcome.analysis,
        cached: outcome.cached,
        timeMs: outcome.timeMs,
      });
    } catch (e) {
      if (!this.computation.isCurrent(controller) && isCancellation(e)) return; // superseded by a newer request
      this.post({ type: 'analysisFailed', settings, error: toUserFacingError(e) });
      if (!isCancellation(e)) this.deps.reporter.fail(`analysing ${layer.name}`, e, false);
    } finally {
      tracked.dispose();
      this.computation.finish(controller);
    }
  }

  async compareMethods(): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    const comparison = await compareMethods(
      {
        session: this.session,
        layers: [layer],
        settings: this.settings,
        scope: shortLayerName(layer.name),
        stats: this.stats(),
      },
      this.services,
      (progress) => this.post({ type: 'comparingMethods', progress }),
    );
    if (comparison) this.post({ type: 'methodComparison', comparison });
  }

  dispose(): void {
    this.computation.abort();
    this.reassemblyRun.abort();
    this.stepFitRun.abort();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.connection.dispose();
  }
}
