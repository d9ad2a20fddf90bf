/**
 * End-to-end evaluation over a grid of methods × ranks × weight formats: each configuration
 * quantizes every selected layer, builds the quantized graph and measures the task metric. Per
 * (format, method) the layers are decomposed once at the largest rank and every rank reuses it.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import type { LayerStatistics } from '../calibration/accumulator';
import type { LinearSite, OnnxLinearModel } from '../calibration/linearSites';
import type { StatsFile } from '../calibration/statsFile';
import { METHODS, unavailableReason, type MethodName } from '../methods/methods';
import type { StatKind } from '../calibration/statsFile';
import { formatToString, isQuantized, parseFormat } from '../quantizers';
import type { Evaluator, MetricResult } from './evaluate';
import { layerCalibration, quantizeLayerAtRanks, type LayerAtRank, type QuantSettings } from './layerQuant';
import type { ActivationQuantSpec } from './mxintGraph';
import { quantizedGraphEdits } from './quantizedGraph';

export interface SweepGrid {
  methods: MethodName[];
  /** Ranks of the low-rank methods; 'full' (or any rank ≥ min(out, in)) is full rank. */
  ranks: number[];
  weightFormats: string[];
  factorFormat: string;
  factorTiling?: QuantSettings['factorTiling'];
  activation?: ActivationQuantSpec | null;
}

export interface SweepRow {
  method: MethodName;
  weightFormat: string;
  /** 0 for RTN. */
  rank: number;
  result?: MetricResult;
  /** Why the configuration did not run (missing calibration). */
  skipped?: string;
}

export interface SweepResult {
  float: MetricResult;
  rows: SweepRow[];
}

export interface SweepOptions {
  signal?: AbortSignal;
  onRow?: (row: SweepRow) => void;
}

export type CalibrationSource = StatsFile | Map<string, LayerStatistics> | null;

/** Parses an activation format for the inserted quantizers: LQER-flavour MXINT only. */
export function activationSpec(format: string | undefined): ActivationQuantSpec | null {
  if (!format) return null;
  const f = parseFormat(format);
  if (!isQuantized(f)) return null;
  if (f.kind !== 'mxint' || f.flavour !== 'lqer' || f.tile[0] !== 1 || f.tile[1] < 1) {
    throw new QuantLensError(
      'bad-argument',
      `activation format "${format}" is not supported: use mxint<bits>[:block=<n>] (LQER's MXINT, blocks along the features)`,
    );
  }
  return { bits: f.bits, block: f.tile[1] };
}

function availableStats(source: CalibrationSource): Set<StatKind> | null {
  if (!source) return null;
  if (source instanceof Map) {
    const any = source.values().next().value;
    if (!any) return new Set();
    return new Set<StatKind>(['act_mean_abs', 'act_rms', ...(any.gram ? (['act_gram'] as const) : [])]);
  }
  const kinds = new Set<StatKind>();
  for (const k of source.info.layers.values()) for (const x of k) kinds.add(x);
  return kinds;
}

/** Every selected layer of the model at each rank, for one method and weight format. */
export async function quantizeModelAtRanks(
  m: OnnxLinearModel,
  sites: LinearSite[],
  calibration: CalibrationSource,
  settings: QuantSettings,
  ranks: number[],
  signal?: AbortSignal,
): Promise<{ site: LinearSite; layers: LayerAtRank[] }[]> {
  const out: { site: LinearSite; layers: LayerAtRank[] }[] = [];
  for (const site of sites) {
    throwIfCancelled(signal);
    const w = await m.checkpoint.readWeight(site.layer.name);
    const [nOut, nIn] = site.layer.shape;
    const cal = await layerCalibration(calibration, site.layer.name, nIn, settings.method, settings.weightFormat);
    if (METHODS[settings.method].needs && !cal) {
      throw new QuantLensError(
        'needs-calibration',
        `${METHODS[settings.method].label} needs ${METHODS[settings.method].needs} for layer "${site.layer.name}", which the statistics lack`,
      );
    }
    const input = { name: site.layer.name, data: w.data, out: nOut, in: nIn, ...(cal ? { calibration: cal } : {}) };
    out.push({ site, layers: await quantizeLayerAtRanks(input, settings, ranks, signal) });
  }
  return out;
}

export async function runSweep(
  evaluator: Evaluator,
  sites: LinearSite[],
  calibration: CalibrationSource,
  grid: SweepGrid,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const float = await evaluator.evaluate(null, { signal: options.signal });
  const available = availableStats(calibration);
  const rows: SweepRow[] = [];
  const emit = (r: SweepRow) => {
    rows.push(r);
    options.onRow?.(r);
  };
  for (const weightFormat of grid.weightFormats) {
    const wf = formatToString(parseFormat(weightFormat));
    for (const method of grid.methods) {
      const ranks = METHODS[method].corrects ? grid.ranks : [0];
      const why = unavailableReason(method, available);
      if (why) {
        for (const rank of ranks) emit({ method, weightFormat: wf, rank, skipped: why });
        continue;
      }
      const settings: QuantSettings = {
        method,
        weightFormat,
        factorFormat: grid.factorFormat,
        factorTiling: grid.factorTiling ?? 'last-dim',
      };
      const quantized = await quantizeModelAtRanks(evaluator.m, sites, calibration, settings, ranks, options.signal);
      for (let r = 0; r < ranks.length; r++) {
        const edits = quantizedGraphEdits(
          quantized.map((q) => ({ site: q.site, layer: q.layers[r]! })),
          evaluator.m.opset,
          { activation: grid.activation ?? null },
        );
        const result = await evaluator.evaluate(edits, { signal: options.signal });
        emit({ method, weightFormat: wf, rank: ranks[r]!, result });
      }
    }
  }
  return { float, rows };
}
