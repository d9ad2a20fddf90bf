/**
 * QLLM channel reassembly for the layer panels: which site (shared input) a layer reads from, whether
 * the calibration file has the activation rows the analysis needs (and, when not, how to get them),
 * and the runs themselves in the worker, kept per (checkpoint, site, calibration, options) so the
 * panels of every layer of a site, and a panel shown again, get the result at once.
 */
import * as vscode from 'vscode';
import { basename } from 'node:path';
import { factorFormatString, type QuantSettings } from '../../shared/quantSettings';
import type {
  ReassemblyResult,
  ReassemblySite,
  ReassemblySupport,
  ReassemblyUiOptions,
} from '../../shared/protocol/layer';
import { shortLayerName } from '../../shared/formatting';
import type { CalibrationService } from './calibrationService';
import type { EngineService } from './engineService';
import type { JobTracker } from './jobTracker';

/** Enough for every site of a model at a few option sets; a result holds a few per-channel arrays. */
const RESULT_CAPACITY = 256;

export const HOW_TO_GET_SAMPLES =
  'Write a statistics file with activation rows with `quant-lens calibrate <model.onnx> --data <inputs> --samples 2048 --out stats.safetensors` (ONNX models), or sample them for reassembly alone with `quant-lens reassemble <model.onnx> --calib-data <data> --save-samples stats.safetensors`; then choose it with Quant Lens: Set Calibration….';

export interface ReassemblyRun {
  result: ReassemblyResult;
  timeMs: number;
  cached: boolean;
}

export class ReassemblyService implements vscode.Disposable {
  private readonly sites = new Map<string, Promise<ReassemblySite[]>>();
  private readonly results = new Map<string, ReassemblyResult>();

  constructor(
    private readonly engine: EngineService,
    private readonly calibration: CalibrationService,
    private readonly jobs: JobTracker,
  ) {}

  /** The reassembly sites of a checkpoint (asked of the worker once per checkpoint). */
  private sitesOf(checkpoint: string): Promise<ReassemblySite[]> {
    let p = this.sites.get(checkpoint);
    if (!p) {
      p = this.engine.pool.call('reassemblySites', { checkpoint });
      this.sites.set(checkpoint, p);
      p.catch(() => this.sites.delete(checkpoint));
    }
    return p;
  }

  async support(checkpoint: string, layer: string): Promise<ReassemblySupport> {
    const site = (await this.sitesOf(checkpoint)).find((s) => s.layers.includes(layer)) ?? null;
    if (!site) {
      return { site: null, status: 'no-site', message: 'This layer reads no input that reassembly can rewrite.' };
    }
    const path = this.calibration.path;
    const shared = site.layers.length > 1 ? 'these layers’ shared input' : 'this layer’s input';
    if (!path) {
      return {
        site,
        status: 'no-calibration',
        message: `Channel reassembly needs activation rows (act_samples) of ${shared}, and no calibration is set. ${HOW_TO_GET_SAMPLES}`,
      };
    }
    const withSamples = site.layers.filter((l) => this.calibration.statsFor(l)?.has('act_samples'));
    if (withSamples.length === 0) {
      return {
        site,
        status: 'no-samples',
        message: `${basename(path)} has no activation samples (act_samples) for ${shared}: it holds per-channel statistics only, and reassembly needs the activation rows themselves. ${HOW_TO_GET_SAMPLES}`,
      };
    }
    return { site, status: 'ready', message: `Activation rows from ${basename(path)}.` };
  }

  private key(checkpoint: string, site: ReassemblySite, options: ReassemblyUiOptions, factorFormat: string): string {
    return JSON.stringify([checkpoint, site.layers, this.calibration.path, options, factorFormat]);
  }

  peek(
    checkpoint: string,
    site: ReassemblySite,
    options: ReassemblyUiOptions,
    settings: QuantSettings,
  ): ReassemblyResult | undefined {
    return this.results.get(this.key(checkpoint, site, options, factorFormatString(settings)));
  }

  /** Runs (or finds) the analysis of a site; `settings` gives the L²QER reference its A/B format. */
  async run(
    checkpoint: string,
    site: ReassemblySite,
    options: ReassemblyUiOptions,
    settings: QuantSettings,
    signal: AbortSignal,
  ): Promise<ReassemblyRun> {
    const factorFormat = factorFormatString(settings);
    const key = this.key(checkpoint, site, options, factorFormat);
    const hit = this.results.get(key);
    if (hit) return { result: hit, timeMs: 0, cached: true };
    const calibration = this.calibration.path;
    if (!calibration) throw new Error('no calibration file is set');
    const t0 = Date.now();
    this.engine.log.info(
      `reassembly of ${site.site} (${site.layers.length} layers) with ${calibration}: W${options.weightBits} A${options.actBits}, ratio ${options.channelRatio}, L²QER rank ${options.rank}`,
    );
    const result = await this.engine.pool.call(
      'reassembleSite',
      {
        checkpoint,
        calibration,
        layers: site.layers,
        site: site.site,
        options: { ...options, factorFormat },
      },
      { signal },
    );
    const timeMs = Date.now() - t0;
    this.engine.log.info(
      `reassembly of ${site.site} in ${timeMs} ms: θ ${result.threshold ?? 'none'}, ${result.extraChannels} extra channels, ${result.helps ? 'helps' : 'does not help'}`,
    );
    this.results.set(key, result);
    while (this.results.size > RESULT_CAPACITY) this.results.delete(this.results.keys().next().value!);
    return { result, timeMs, cached: false };
  }

  /**
   * `run` under a cancellable progress notification (and "Cancel Running Analysis"); undefined
   * when the user cancelled there.
   */
  runWithProgress(
    checkpoint: string,
    site: ReassemblySite,
    options: ReassemblyUiOptions,
    settings: QuantSettings,
    signal: AbortSignal,
  ): Promise<ReassemblyRun | undefined> {
    return this.jobs.batch(
      { title: `QLLM reassembly of ${shortLayerName(site.site)}`, kind: 'analysis', total: 1, unit: 'site' },
      async (ctx) => {
        ctx.working(shortLayerName(site.site));
        const r = await this.run(checkpoint, site, options, settings, AbortSignal.any([ctx.signal, signal]));
        ctx.tick();
        return r;
      },
    );
  }

  dispose(): void {
    this.sites.clear();
    this.results.clear();
  }
}
