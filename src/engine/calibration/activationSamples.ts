/**
 * A bounded sample of activation rows at the input of every linear layer of an ONNX model, for the
 * analyses that need raw rows rather than statistics (QLLM channel reassembly, qllm.ts). The linear
 * inputs are added as graph outputs, each batch's rows are offered to a reservoir sampler
 * (ActivationAccumulator, seeded, so runs reproduce), and the result is written as N.act_samples
 * beside the usual statistics. Rows: one per token, or one per pixel of a 1×1 convolution.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { ActivationAccumulator, refuseBeyondMemory, type LayerStatistics } from './accumulator';
import { openDataset, type DatasetOptions } from './dataset';
import { openOnnxLinearModel, selectSites, type LayerSelection, type LinearSite } from './linearSites';
import { describeModelIO } from './modelInputs';
import { openEditedSession, type SessionOptions } from '../evaluation/session';
import { OnnxType } from '../onnx/builder';

export interface SampleActivationOptions extends DatasetOptions, SessionOptions {
  model: string;
  /** Rows kept per layer input (reservoir sample over all calibration rows). */
  rows: number;
  seed?: number;
  layers?: LayerSelection;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
}

/** The activation [dims] of one site as row-major [rows, channels]. */
function asRows(data: Float32Array, dims: readonly number[], site: LinearSite): { rows: Float32Array; count: number } {
  const C = site.channels;
  if (site.layout === 'last') return { rows: data, count: data.length / C };
  if (site.layout === 'first') {
    // [C, rows] (Gemm with transA): transpose.
    const n = data.length / C;
    const out = new Float32Array(data.length);
    for (let c = 0; c < C; c++) for (let r = 0; r < n; r++) out[r * C + c] = data[c * n + r]!;
    return { rows: out, count: n };
  }
  // NCHW → one row per (n, h, w).
  const N = dims[0] ?? 1;
  const hw = data.length / (N * C);
  const out = new Float32Array(data.length);
  for (let b = 0; b < N; b++) {
    for (let c = 0; c < C; c++) {
      const src = (b * C + c) * hw;
      for (let p = 0; p < hw; p++) out[(b * hw + p) * C + c] = data[src + p]!;
    }
  }
  return { rows: out, count: N * hw };
}

/** Statistics (act_mean_abs, act_rms) and a sample of rows for every selected linear layer. */
export async function sampleActivations(o: SampleActivationOptions): Promise<Map<string, LayerStatistics>> {
  const m = await openOnnxLinearModel(o.model);
  try {
    const sites = selectSites(m.sites, o.layers ?? { all: true }, o.model);
    const dataset = openDataset(describeModelIO(m.model), o);
    // Every reservoir is allocated now and held to the end: refuse at once what would not fit.
    const inputs = new Map(sites.map((site) => [site.graph.activationInput, site.channels]));
    refuseBeyondMemory(
      [...inputs.values()].reduce((sum, c) => sum + o.rows * c * 4, 0),
      `keeping ${o.rows} activation rows (--samples) at ${inputs.size} layer input${inputs.size === 1 ? '' : 's'}`,
      o.model,
    );
    const byInput = new Map<string, { site: LinearSite; acc: ActivationAccumulator; layers: string[] }>();
    for (const site of sites) {
      const g = byInput.get(site.graph.activationInput);
      if (g) g.layers.push(site.layer.name);
      else {
        const acc = new ActivationAccumulator(site.channels, { sampleRows: o.rows, seed: o.seed ?? 1 });
        byInput.set(site.graph.activationInput, { site, acc, layers: [site.layer.name] });
      }
    }
    const names = [...byInput.keys()];
    const edits = { addOutputs: names.map((name) => ({ name, elemType: OnnxType.FLOAT })) };
    const { session, dispose } = await openEditedSession(m.model, edits, o.threads ? { threads: o.threads } : {});
    try {
      for (let i = 0; i < dataset.batches; i++) {
        throwIfCancelled(o.signal);
        const r = await session.run(dataset.batch(i).feeds, names);
        for (const [name, g] of byInput) {
          const t = r[name]!;
          if (!(t.data instanceof Float32Array)) {
            throw new QuantLensError('unsupported', `activation "${name}" is ${t.type}, not float32`, o.model);
          }
          const { rows, count } = asRows(t.data, t.dims, g.site);
          g.acc.addBatch(rows, count);
        }
        o.onBatch?.(i + 1, dataset.batches);
      }
    } finally {
      await dispose();
    }
    const out = new Map<string, LayerStatistics>();
    for (const g of byInput.values()) {
      const s = g.acc.finish();
      for (const name of g.layers) out.set(name, s);
    }
    return out;
  } finally {
    await m.close();
  }
}
