/**
 * Fitted against min/max step sizes for the layer panels (a layer-local fit inspired by SiLQ's
 * learned step sizes): the worker's fitStepSizes, kept per checkpoint, layer, settings and rank
 * until the calibration changes, since a fit takes seconds and the panel asks again when shown.
 */
import * as vscode from 'vscode';
import type { LinearLayer } from '../../shared/checkpointSummary';
import type { StepFitComparison } from '../../shared/protocol/layer';
import { FACTOR_TILING, factorFormatString, weightFormatString, type QuantSettings } from '../../shared/quantSettings';
import type { CalibrationService } from './calibrationService';
import type { EngineService } from './engineService';
import type { JobTracker } from './jobTracker';

export class StepFitService implements vscode.Disposable {
  private readonly results = new Map<string, StepFitComparison>();
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly engine: EngineService,
    private readonly calibration: CalibrationService,
    private readonly jobs: JobTracker,
  ) {
    this.subscription = calibration.onDidChange(() => this.results.clear());
  }

  private key(checkpoint: string, layer: string, settings: QuantSettings, rank: number): string {
    const weightFormat = weightFormatString({ ...settings, fittedSteps: true });
    return JSON.stringify([checkpoint, layer, weightFormat, settings.method, factorFormatString(settings), rank]);
  }

  peek(checkpoint: string, layer: string, settings: QuantSettings, rank: number): StepFitComparison | undefined {
    return this.results.get(this.key(checkpoint, layer, settings, rank));
  }

  /** Fits the layer's INT steps at `settings` and compares them with min/max at `rank`, alone and with the method on top. */
  async compare(
    checkpoint: string,
    layer: LinearLayer,
    settings: QuantSettings,
    rank: number,
    controller: AbortController,
  ): Promise<StepFitComparison> {
    const key = this.key(checkpoint, layer.name, settings, rank);
    const hit = this.results.get(key);
    if (hit) return hit;
    const calibration = this.calibration.path;
    const tracked = this.jobs.track(controller);
    try {
      const comparison = await this.engine.pool.call(
        'fitStepSizes',
        {
          checkpoint,
          layer: layer.name,
          ...(calibration ? { calibration } : {}),
          settings: {
            method: settings.method,
            weightFormat: weightFormatString({ ...settings, fittedSteps: true }),
            factorFormat: factorFormatString(settings),
            factorTiling: FACTOR_TILING,
          },
          rank,
        },
        { signal: controller.signal },
      );
      this.results.set(key, comparison);
      this.engine.log.info(
        `fitted steps of ${layer.name} at rank ${rank}: ${comparison.summary.groupsChanged}/${comparison.summary.groups} groups moved`,
      );
      return comparison;
    } finally {
      tracked.dispose();
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.results.clear();
  }
}
