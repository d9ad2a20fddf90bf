/**
 * The layer inspection panel: one WebviewPanel per (checkpoint, layer), each with its own
 * settings (they start from the checkpoint's). A rank change costs the host nothing — the
 * webview derives every metric from the curves it already has; a method or format change asks the
 * worker (or the session cache) for a new analysis while the old one stays on screen. Panels come
 * back after a reload through the WebviewPanelSerializer.
 */
import * as vscode from 'vscode';
import { appliedRank } from '../engine/methods/methods';
import type { LinearLayer } from '../shared/checkpointSummary';
import { parseLayerPanelState } from '../shared/layerPanelState';
import {
  FACTOR_TILING,
  factorFormatString,
  fittedStepsApply,
  methodChoices,
  sameAnalysis,
  sanitizeSettings,
  sliderMaxRank,
  usableMethod,
  weightFormatString,
  type QuantSettings,
} from '../shared/quantSettings';
import { DEFAULT_REASSEMBLY_OPTIONS, sanitizeReassemblyOptions } from '../shared/reassemblyOptions';
import type { LayerInbound, LayerOutbound, ReassemblyUiOptions, StepFitComparison } from '../shared/webviewProtocol';
import { compareMethods, type Services } from './batchActions';
import type { CheckpointSession } from './checkpointSession';
import { isCancellation, toUserFacingError } from './errors';
import type { Reporter } from './logging';
import { ReassemblyService } from './reassemblyService';
import type { SessionRegistry } from './sessionRegistry';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const LAYER_VIEW_TYPE = 'quantLens.layer';

/** "model.layers.0.self_attn.q_proj.weight" → "layers.0.self_attn.q_proj" */
export function shortLayerName(name: string): string {
  return name.replace(/^model\./, '').replace(/\.weight$/, '');
}

const panelKey = (checkpoint: string, layer: string) => `${checkpoint}\n${layer}`;

/** From this min(out, in) on, a layer's analysis arrives in stages (first numbers, then the rest). */
const PROGRESSIVE_MIN_ORDER = 512;

/** At most this many progress messages per second reach a webview. */
const PROGRESS_INTERVAL_MS = 100;

export interface LayerPanelHooks {
  openOverview(session: CheckpointSession): Promise<void>;
}

export class LayerPanels implements vscode.Disposable {
  private readonly open = new Map<string, LayerPanel>();
  private lastActive: LayerPanel | undefined;
  private readonly reassembly: ReassemblyService;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly sessions: SessionRegistry,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: LayerPanelHooks,
  ) {
    this.reassembly = new ReassemblyService(services.engine, services.calibration);
  }

  /** The focused layer panel, if one is focused. */
  get active(): LayerPanel | undefined {
    return this.lastActive?.isActive ? this.lastActive : undefined;
  }

  register(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(LAYER_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state) => this.revive(panel, state),
    });
  }

  show(session: CheckpointSession, layer: string, column: vscode.ViewColumn = vscode.ViewColumn.Active): void {
    const existing = this.open.get(panelKey(session.path, layer));
    if (existing) {
      existing.reveal(column);
      return;
    }
    const panel = vscode.window.createWebviewPanel(LAYER_VIEW_TYPE, shortLayerName(layer), column, {
      ...webviewOptions(this.extensionUri),
      retainContextWhenHidden: false,
    });
    this.create(panel, session.uri, layer, session.settings);
  }

  private revive(panel: vscode.WebviewPanel, state: unknown): void {
    const parsed = parseLayerPanelState(state);
    this.services.engine.log.info(
      parsed
        ? `restoring the layer panel of ${parsed.layer} (${parsed.checkpoint})`
        : `cannot restore a layer panel from ${JSON.stringify(state)}`,
    );
    if (!parsed) {
      panel.webview.options = webviewOptions(this.extensionUri);
      panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'layer', panel.title);
      const sub = panel.webview.onDidReceiveMessage((m: LayerOutbound) => {
        if (m.type !== 'ready') return;
        const msg: LayerInbound = {
          type: 'error',
          error: {
            code: 'internal',
            message:
              'This panel could not be restored: its saved state names no layer. Close it and open the layer again.',
          },
        };
        void panel.webview.postMessage(msg);
      });
      panel.onDidDispose(() => sub.dispose());
      return;
    }
    const existing = this.open.get(panelKey(parsed.checkpoint, parsed.layer));
    if (existing) {
      // Two restored panels for one layer: keep the first.
      panel.dispose();
      existing.reveal();
      return;
    }
    this.create(panel, vscode.Uri.file(parsed.checkpoint), parsed.layer, parsed.settings);
  }

  private create(panel: vscode.WebviewPanel, uri: vscode.Uri, layer: string, settings: QuantSettings): void {
    const { session, release } = this.sessions.acquire(uri);
    const key = panelKey(session.path, layer);
    const p = new LayerPanel(
      panel,
      session,
      release,
      layer,
      settings,
      this.extensionUri,
      this.services,
      this.reporter,
      this.hooks,
      this.reassembly,
    );
    this.open.set(key, p);
    this.lastActive = p;
    panel.onDidChangeViewState((e) => {
      if (e.webviewPanel.active) {
        this.lastActive = p;
        this.sessions.setActive(session);
      }
    });
    panel.onDidDispose(() => {
      if (this.open.get(key) === p) this.open.delete(key);
      if (this.lastActive === p) this.lastActive = undefined;
    });
    if (panel.active) this.sessions.setActive(session);
  }

  dispose(): void {
    for (const p of [...this.open.values()]) p.dispose();
    this.reassembly.dispose();
  }
}

export class LayerPanel implements vscode.Disposable {
  private settings: QuantSettings;
  private layer: LinearLayer | undefined;
  private computation: AbortController | undefined;
  private reassemblyRun: AbortController | undefined;
  private stepFitRun: AbortController | undefined;
  /** Fitted-vs-min/max comparisons already made in this panel, by settings and rank. */
  private readonly stepFits = new Map<string, StepFitComparison>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly panel: vscode.WebviewPanel,
    readonly session: CheckpointSession,
    release: vscode.Disposable,
    readonly layerName: string,
    settings: QuantSettings,
    extensionUri: vscode.Uri,
    private readonly services: Services,
    private readonly reporter: Reporter,
    private readonly hooks: LayerPanelHooks,
    private readonly reassembly: ReassemblyService,
  ) {
    this.settings = settings;
    panel.title = shortLayerName(layerName);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'layer', panel.title);
    this.disposables.push(
      release,
      panel.webview.onDidReceiveMessage((m: LayerOutbound) => void this.onMessage(m)),
      services.calibration.onDidChange(() => void this.onCalibrationChanged()),
      panel.onDidDispose(() => this.dispose()),
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

  private post(msg: LayerInbound): void {
    void this.panel.webview.postMessage(msg).then(undefined, () => undefined);
  }

  private stats(): ReturnType<Services['calibration']['statsFor']> {
    return this.services.calibration.statsFor(this.layerName);
  }

  private async onMessage(msg: LayerOutbound): Promise<void> {
    try {
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
        case 'compare':
          await this.compareMethods();
          break;
        case 'cancel':
          this.computation?.abort();
          break;
        case 'openOverview':
          await this.hooks.openOverview(this.session);
          break;
        case 'reassemble':
          await this.reassemble(sanitizeReassemblyOptions(msg.options, DEFAULT_REASSEMBLY_OPTIONS));
          break;
        case 'cancelReassembly':
          this.reassemblyRun?.abort();
          break;
        case 'compareStepFit':
          await this.compareStepFit(sanitizeSettings(msg.settings, this.settings), msg.rank);
          break;
      }
    } catch (e) {
      this.reporter.fail(`layer panel (${msg.type})`, e);
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
      this.post({ type: 'reassemblySupport', support: await this.reassembly.support(this.session.path, layer.name) });
    } catch (e) {
      this.post({
        type: 'reassemblySupport',
        support: {
          site: null,
          status: 'no-site',
          message: `Cannot find this layer's input site: ${toUserFacingError(e).message}`,
        },
      });
      this.reporter.fail(`reassembly sites of ${this.session.name}`, e, false);
    }
  }

  /** QLLM channel reassembly of the layer's site, in the worker, under a cancellable notification. */
  private async reassemble(options: ReassemblyUiOptions): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    const support = await this.reassembly.support(this.session.path, layer.name);
    this.post({ type: 'reassemblySupport', support });
    const site = support.site;
    if (support.status !== 'ready' || !site) {
      this.post({ type: 'reassemblyFailed', options, error: { code: 'needs-calibration', message: support.message } });
      return;
    }
    const cached = this.reassembly.peek(this.session.path, site, options, this.settings);
    if (cached) {
      this.post({ type: 'reassembly', options, result: cached, timeMs: 0, cached: true });
      return;
    }
    this.reassemblyRun?.abort();
    const mine = new AbortController();
    this.reassemblyRun = mine;
    const t0 = Date.now();
    this.post({ type: 'reassembling', options, elapsedMs: 0 });
    const timer = setInterval(() => this.post({ type: 'reassembling', options, elapsedMs: Date.now() - t0 }), 1000);
    try {
      const run = await this.services.jobs.batch(
        { title: `QLLM reassembly of ${shortLayerName(site.site)}`, kind: 'analysis', total: 1, unit: 'site' },
        async (ctx) => {
          ctx.working(shortLayerName(site.site));
          const r = await this.reassembly.run(
            this.session.path,
            site,
            options,
            this.settings,
            AbortSignal.any([ctx.signal, mine.signal]),
          );
          ctx.tick();
          return r;
        },
      );
      if (this.reassemblyRun !== mine) return;
      if (run) this.post({ type: 'reassembly', options, result: run.result, timeMs: run.timeMs, cached: run.cached });
      else this.post({ type: 'reassemblyFailed', options, error: { code: 'cancelled', message: 'cancelled' } });
    } catch (e) {
      if (this.reassemblyRun !== mine) return;
      this.post({ type: 'reassemblyFailed', options, error: toUserFacingError(e) });
      if (!isCancellation(e)) this.reporter.fail(`reassembly of ${site.site}`, e, false);
    } finally {
      clearInterval(timer);
      if (this.reassemblyRun === mine) this.reassemblyRun = undefined;
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
    const weightFormat = weightFormatString({ ...settings, fittedSteps: true });
    const calibration = this.services.calibration.path;
    const key = JSON.stringify([weightFormat, settings.method, factorFormatString(settings), k, calibration]);
    const hit = this.stepFits.get(key);
    if (hit) {
      this.post({ type: 'stepFit', settings, rank: k, comparison: hit });
      return;
    }
    this.stepFitRun?.abort();
    const controller = new AbortController();
    this.stepFitRun = controller;
    const tracked = this.services.jobs.track(controller);
    this.post({ type: 'stepFitComputing', settings, rank: k });
    try {
      const comparison = await this.services.engine.pool.call(
        'fitStepSizes',
        {
          checkpoint: this.session.path,
          layer: layer.name,
          ...(calibration ? { calibration } : {}),
          settings: {
            method: settings.method,
            weightFormat,
            factorFormat: factorFormatString(settings),
            factorTiling: FACTOR_TILING,
          },
          rank: k,
        },
        { signal: controller.signal },
      );
      this.stepFits.set(key, comparison);
      this.services.engine.log.info(
        `fitted steps of ${layer.name} at rank ${k}: ${comparison.summary.groupsChanged}/${comparison.summary.groups} groups moved`,
      );
      if (this.stepFitRun === controller) this.post({ type: 'stepFit', settings, rank: k, comparison });
    } catch (e) {
      if (this.stepFitRun !== controller && isCancellation(e)) return;
      this.post({ type: 'stepFitFailed', settings, rank: k, error: toUserFacingError(e) });
      if (!isCancellation(e)) this.reporter.fail(`fitted step sizes of ${layer.name}`, e, false);
    } finally {
      tracked.dispose();
      if (this.stepFitRun === controller) this.stepFitRun = undefined;
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
      this.stepFits.clear();
      void this.sendReassemblySupport();
      await this.compute();
    } catch (e) {
      this.reporter.fail('layer panel (calibration)', e);
    }
  }

  /** Asks for the analysis at the panel's settings; a newer request supersedes an older one. */
  private async compute(): Promise<void> {
    const layer = this.layer;
    if (!layer) return;
    this.computation?.abort();
    const controller = new AbortController();
    this.computation = controller;
    const settings = this.settings;
    const request = this.session.request(layer, settings);
    const tracked = this.services.jobs.track(controller);
    let lastProgress = 0;
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
            if (this.computation === controller)
              this.post({
                type: 'analysis',
                settings,
                analysis: p.partial,
                cached: false,
                timeMs: Date.now() - started,
              });
            return;
          }
          const now = Date.now();
          if (now - lastProgress < PROGRESS_INTERVAL_MS) return;
          lastProgress = now;
          this.post({ type: 'computing', settings, fraction: p.fraction, step: p.step });
        },
      });
      if (this.computation !== controller) return;
      this.post({
        type: 'analysis',
        settings,
        analysis: outcome.analysis,
        cached: outcome.cached,
        timeMs: outcome.timeMs,
      });
    } catch (e) {
      if (this.computation !== controller && isCancellation(e)) return; // superseded by a newer request
      this.post({ type: 'analysisFailed', settings, error: toUserFacingError(e) });
      if (!isCancellation(e)) this.reporter.fail(`analysing ${layer.name}`, e, false);
    } finally {
      tracked.dispose();
      if (this.computation === controller) this.computation = undefined;
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
      (progress) => this.post({ type: 'comparing', progress }),
    );
    if (comparison) this.post({ type: 'comparison', comparison });
  }

  dispose(): void {
    this.computation?.abort();
    this.reassemblyRun?.abort();
    this.stepFitRun?.abort();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
