/**
 * End-to-end sensitivity of each layer, for the allocation's 'output-sensitivity' objective, and
 * the measured output deviation of whole recipes.
 *
 * Summing every layer's relative output error treats all layers as equally important; they are
 * not (an early convolution's error travels through the rest of the network, a late projection's
 * barely does). Measured here, once, on a few calibration inputs: with only layer l quantized at a
 * reference configuration (format, rank), the model's relative output deviation
 *
 *   D_l = Σ‖y_q − y‖² / Σ‖y‖²   (y: the model's output, e.g. the recognizer's per-step probabilities)
 *
 * divided by the layer's own relative output error at that configuration, e_l = tr(ΔW R ΔWᵀ)/tr(W R Wᵀ),
 * gives s_l = D_l / e_l: how much model-output deviation one unit of this layer's relative output
 * error causes. Then s_l·e_l(f, k) estimates layer l's share of the model's deviation at any
 * (format, rank), and the sum the whole model's (additive, independent errors: first order).
 * ONNX models only (it runs the model).
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { openDataset, type Dataset, type DatasetOptions } from '../calibration/dataset';
import { openOnnxLinearModel, type OnnxLinearModel } from '../calibration/linearSites';
import { describeModelIO } from '../calibration/modelInputs';
import type { StatsFile } from '../calibration/statsFile';
import type { GraphEdits } from '../evaluation/graphEdit';
import { quantizeLayerAtRanks, type QuantSettings } from '../evaluation/layerQuant';
import { quantizedGraphEdits } from '../evaluation/quantizedGraph';
import { openEditedSession, type SessionOptions } from '../evaluation/session';
import type { AllocationLayer } from './allocation';
import type { Recipe } from './recipe';
import { quantizedSites } from './recipeEvaluation';
import type { LayerSensitivity } from './sensitivityTypes';

export type { LayerSensitivity };

export interface ProbeOptions extends DatasetOptions, SessionOptions {
  model: string;
  stats: StatsFile | null;
  /** Method and A/B format; weight formats and ranks come from the reference or the recipes. */
  settings: Omit<QuantSettings, 'weightFormat'>;
  signal?: AbortSignal;
}

export interface SensitivityOptions extends ProbeOptions {
  layers: AllocationLayer[];
  /** The configuration each layer is probed at (default: its first format at rank 16, capped). */
  reference?: { format?: string; rank: number };
  onLayer?: (done: number, total: number, layer: string) => void;
}

/** The float model's outputs on the probe inputs, and the relative deviation of edited copies. */
class DeviationProbe {
  private constructor(
    readonly m: OnnxLinearModel,
    private readonly dataset: Dataset,
    private readonly output: string,
    private readonly float: Float32Array[],
    private readonly power: number,
    private readonly session: SessionOptions,
  ) {}

  static async open(o: ProbeOptions): Promise<DeviationProbe> {
    const m = await openOnnxLinearModel(o.model);
    try {
      const io = describeModelIO(m.model);
      const dataset = openDataset(io, o);
      const session = o.threads ? { threads: o.threads } : {};
      const float: Float32Array[] = [];
      let power = 0;
      const s = await openEditedSession(m.model, {}, session);
      try {
        for (let i = 0; i < dataset.batches; i++) {
          throwIfCancelled(o.signal);
          const y = (await s.session.run(dataset.batch(i).feeds, [io.output]))[io.output]!.data as Float32Array;
          float.push(Float32Array.from(y));
          for (const v of y) power += v * v;
        }
      } finally {
        await s.dispose();
      }
      return new DeviationProbe(m, dataset, io.output, float, power, session);
    } catch (e) {
      await m.close();
      throw e;
    }
  }

  /** Σ‖y_q − y‖² / Σ‖y‖² of the model with `edits` applied. */
  async deviation(edits: GraphEdits, signal?: AbortSignal): Promise<number> {
    const s = await openEditedSession(this.m.model, edits, this.session);
    let dev = 0;
    try {
      for (let i = 0; i < this.dataset.batches; i++) {
        throwIfCancelled(signal);
        const y = (await s.session.run(this.dataset.batch(i).feeds, [this.output]))[this.output]!.data as Float32Array;
        const ref = this.float[i]!;
        for (let j = 0; j < y.length; j++) dev += (y[j]! - ref[j]!) ** 2;
      }
    } finally {
      await s.dispose();
    }
    return this.power > 0 ? dev / this.power : 0;
  }

  close(): Promise<void> {
    return this.m.close();
  }
}

/** Measures s_l for every layer and returns the layers with `sensitivity` set, and the details. */
export async function layerSensitivities(
  o: SensitivityOptions,
): Promise<{ layers: AllocationLayer[]; details: LayerSensitivity[] }> {
  const probe = await DeviationProbe.open(o);
  try {
    const { m } = probe;
    const details: LayerSensitivity[] = [];
    for (const layer of o.layers) {
      throwIfCancelled(o.signal);
      const site = m.sites.find((s) => s.layer.name === layer.name);
      if (!site)
        throw new QuantLensError('bad-argument', `"${layer.name}" is not a linear layer of the graph`, o.model);
      const option = layer.options.find((x) => x.format === (o.reference?.format ?? layer.options[0]!.format));
      if (!option?.outputErrSq || !layer.outputSq) {
        throw new QuantLensError(
          'needs-calibration',
          `"${layer.name}" has no output-error curve for the sensitivity probe (calibration with act_gram or act_rms)`,
        );
      }
      const rank = Math.min(o.reference?.rank ?? 16, option.bits.length - 1);
      const w = await m.checkpoint.readWeight(layer.name, o.signal);
      const calibration = o.stats ? await o.stats.layerCalibration(layer.name, w.in) : undefined;
      const input = { name: layer.name, data: w.data, out: w.out, in: w.in, ...(calibration ? { calibration } : {}) };
      const [q] = await quantizeLayerAtRanks(input, { ...o.settings, weightFormat: option.format }, [rank], o.signal);
      const modelDeviation = await probe.deviation(quantizedGraphEdits([{ site, layer: q! }], m.opset), o.signal);
      const layerError = option.outputErrSq[rank]! / layer.outputSq;
      details.push({
        name: layer.name,
        modelDeviation,
        layerError,
        sensitivity: layerError > 0 ? modelDeviation / layerError : NaN,
      });
      o.onLayer?.(details.length, o.layers.length, layer.name);
    }
    // A layer whose probe error is zero (exactly representable) gets the mean sensitivity.
    const finite = details.filter((d) => Number.isFinite(d.sensitivity));
    const mean = finite.length ? finite.reduce((a, d) => a + d.sensitivity, 0) / finite.length : 1;
    for (const d of details) if (!Number.isFinite(d.sensitivity)) d.sensitivity = mean;
    return { layers: o.layers.map((l, i) => ({ ...l, sensitivity: details[i]!.sensitivity })), details };
  } finally {
    await probe.close();
  }
}

/** The measured relative output deviation of the whole model under each recipe. */
export async function recipeDeviations(
  recipes: { label: string; recipe: Recipe }[],
  o: ProbeOptions,
): Promise<{ label: string; deviation: number }[]> {
  const probe = await DeviationProbe.open(o);
  try {
    const out: { label: string; deviation: number }[] = [];
    for (const { label, recipe } of recipes) {
      const layers = await quantizedSites(probe.m.sites, recipe, o, (n) => probe.m.checkpoint.readWeight(n, o.signal));
      out.push({ label, deviation: await probe.deviation(quantizedGraphEdits(layers, probe.m.opset), o.signal) });
    }
    return out;
  } finally {
    await probe.close();
  }
}
