/**
 * Calibration of an ONNX model with onnxruntime: run the rewritten model (statsGraph.ts) batch by
 * batch and fold each batch's reductions into one ActivationAccumulator per linear layer. One
 * calibration batch is one onnxruntime run, so act_mean_abs has the official semantics (max over
 * batches of the per-batch mean |x|) with the batch size chosen here.
 */
import { throwIfCancelled } from '../errors';
import { ActivationAccumulator, refuseBeyondMemory, type LayerStatistics } from './accumulator';
import { openDataset, type Batch, type Dataset, type DatasetOptions } from './dataset';
import {
  openOnnxLinearModel,
  selectSites,
  type LayerSelection,
  type LinearSite,
  type OnnxLinearModel,
} from './linearSites';
import { describeModelIO } from './modelInputs';
import { statsGraph } from './statsGraph';
import { writeStatsFile } from './statsFile';
import { checkOutputFile, type OutputInput } from '../writers/safeOutput';
import { sampleActivations } from './activationSamples';
import { openEditedSession, type OrtTensor, type SessionOptions } from '../evaluation/session';

export interface CalibrateOptions extends DatasetOptions, SessionOptions {
  model: string;
  /** Also accumulate the Gram matrix E[x xᵀ] (QERA-exact). */
  gram?: boolean;
  /**
   * Also keep a reservoir sample of this many activation rows per layer input (N.act_samples, for
   * QLLM reassembly). Costs a second pass over the data, which ships whole activations out.
   */
  sampleRows?: number;
  /** Which layers; default all linear layers (heads included: their statistics cost little). */
  layers?: LayerSelection;
  signal?: AbortSignal;
  onProgress?: (p: CalibrationProgress) => void;
}

export interface CalibrationProgress {
  batchesDone: number;
  batches: number;
  samplesDone: number;
}

export interface CalibrationResult {
  stats: Map<string, LayerStatistics>;
  samples: number;
  batches: number;
  kind: 'image' | 'text';
  batchSize: number;
  seconds: number;
}

/**
 * Runs the model with the statistics rewrite over a stream of feeds, one onnxruntime run per
 * calibration batch, and returns each selected layer's statistics. Only one batch is held at a time.
 */
export async function accumulateStats(
  m: OnnxLinearModel,
  sites: LinearSite[],
  batches: Iterable<{ feeds: Record<string, OrtTensor>; size: number }>,
  o: { gram?: boolean; signal?: AbortSignal; threads?: number; onBatch?: (size: number) => void },
): Promise<Map<string, LayerStatistics>> {
  const { edits, outputs } = statsGraph(sites, m.opset, { gram: !!o.gram });
  if (o.gram) {
    const layers = outputs.flatMap((g) => g.layers.map(() => g.channels));
    refuseBeyondMemory(
      layers.reduce((sum, c) => sum + c * c * 8, 0),
      `the Gram matrices (--gram) of ${layers.length} layer${layers.length === 1 ? '' : 's'}`,
      m.model.path,
    );
  }
  const accumulators = new Map<string, ActivationAccumulator>();
  for (const g of outputs) {
    for (const name of g.layers) accumulators.set(name, new ActivationAccumulator(g.channels, { gram: !!o.gram }));
  }
  const fetches = outputs.flatMap((g) => [g.sumAbs, g.sumSq, g.shape, ...(g.gram ? [g.gram] : [])]);
  const { session, dispose } = await openEditedSession(m.model, edits, o.threads ? { threads: o.threads } : {});
  try {
    for (const batch of batches) {
      throwIfCancelled(o.signal);
      const r = await session.run(batch.feeds, fetches);
      for (const g of outputs) {
        const rows = Number((r[g.shape]!.data as BigInt64Array)[0]);
        const sums = {
          rows,
          sumAbs: r[g.sumAbs]!.data as Float32Array,
          sumSq: r[g.sumSq]!.data as Float32Array,
          ...(g.gram ? { gram: r[g.gram]!.data as Float32Array } : {}),
        };
        for (const name of g.layers) accumulators.get(name)!.addBatchSums(sums);
      }
      o.onBatch?.(batch.size);
    }
  } finally {
    await dispose();
  }
  const stats = new Map<string, LayerStatistics>();
  for (const site of sites) stats.set(site.layer.name, accumulators.get(site.layer.name)!.finish());
  return stats;
}

function* batchesOf(dataset: Dataset): Generator<Batch> {
  for (let i = 0; i < dataset.batches; i++) yield dataset.batch(i);
}

export async function calibrateOnnx(o: CalibrateOptions): Promise<CalibrationResult> {
  const started = performance.now();
  const m = await openOnnxLinearModel(o.model);
  try {
    const io = describeModelIO(m.model);
    const sites = selectSites(m.sites, o.layers ?? { all: true }, o.model);
    if (o.sampleRows) {
      // Checked before the statistics pass, not only when the sampling pass starts.
      const inputs = new Map(sites.map((site) => [site.graph.activationInput, site.channels]));
      refuseBeyondMemory(
        [...inputs.values()].reduce((sum, c) => sum + o.sampleRows! * c * 4, 0),
        `keeping ${o.sampleRows} activation rows (--samples) at ${inputs.size} layer input${inputs.size === 1 ? '' : 's'}`,
        o.model,
      );
    }
    const dataset = openDataset(io, o);
    let samplesDone = 0;
    let batchesDone = 0;
    const stats = await accumulateStats(m, sites, batchesOf(dataset), {
      ...o,
      onBatch: (size) => {
        samplesDone += size;
        batchesDone++;
        o.onProgress?.({ batchesDone, batches: dataset.batches, samplesDone });
      },
    });
    if (o.sampleRows && o.sampleRows > 0) {
      const sampled = await sampleActivations({ ...o, rows: o.sampleRows, layers: o.layers ?? { all: true } });
      for (const [name, st] of stats) {
        const smp = sampled.get(name)?.samples;
        if (smp) stats.set(name, { ...st, samples: smp });
      }
    }
    return {
      stats,
      samples: samplesDone,
      batches: dataset.batches,
      kind: dataset.kind,
      batchSize: dataset.batchSize,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await m.close();
  }
}

/** What a calibration reads: the model, its external data files, the data and the tokenizer. */
async function calibrationInputs(o: CalibrateOptions): Promise<OutputInput[]> {
  const inputs: OutputInput[] = [{ path: o.model, what: 'the model' }];
  const m = await openOnnxLinearModel(o.model);
  try {
    for (const w of m.model.weightSources().values()) {
      const d = w.tensor.data;
      if (d.kind === 'external') inputs.push({ path: d.path, what: 'an external data file of the model' });
    }
  } finally {
    await m.close();
  }
  inputs.push({ path: o.data, what: 'the calibration data' });
  if (o.tokenizer) inputs.push({ path: o.tokenizer, what: 'the tokenizer' });
  return inputs;
}

/**
 * Calibrates and writes the statistics file. The output is checked before the calibration runs,
 * so a name that would destroy an input (or exists, without `force`) costs nothing.
 */
export async function calibrateToFile(
  o: CalibrateOptions & { out: string; force?: boolean; outOption?: string },
): Promise<CalibrationResult> {
  const rules = { inputs: await calibrationInputs(o), force: !!o.force, option: o.outOption ?? '--out' };
  const out = await checkOutputFile(o.out, rules);
  const r = await calibrateOnnx(o);
  await writeStatsFile(
    out,
    r.stats,
    {
      source_model: o.model,
      calibration_data: o.data,
      calibration_samples: String(r.samples),
      calibration_batches: String(r.batches),
      batch_size: String(r.batchSize),
      ...(r.kind === 'text' ? { seq_len: String(o.seqLen ?? 128) } : {}),
      producer: 'quant-lens calibrate (onnxruntime)',
    },
    o.signal,
  );
  return r;
}
