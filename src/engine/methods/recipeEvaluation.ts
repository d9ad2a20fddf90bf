/**
 * End-to-end metric of recipes (per-layer format and rank) on an ONNX model: each recipe's layers
 * are quantized as `export --recipe` would quantize them (W_q and the method's factors at the
 * recipe's rank, A and B in the factor format), folded into a copy of the graph, and evaluated with
 * the evaluation engine (CER for the OCR recognizer, perplexity for language models).
 */
import { throwIfCancelled } from '../errors';
import { openOnnxLinearModel, type LinearSite } from '../calibration/linearSites';
import type { StatsFile } from '../calibration/statsFile';
import { Evaluator, type EvaluatorOptions, type MetricResult } from '../evaluation/evaluate';
import { quantizeLayerAtRanks, type LayerAtRank, type QuantSettings } from '../evaluation/layerQuant';
import type { ActivationQuantSpec } from '../evaluation/mxintGraph';
import { quantizedGraphEdits } from '../evaluation/quantizedGraph';
import type { Recipe } from './recipe';

export interface RecipeEvaluationOptions extends EvaluatorOptions {
  stats: StatsFile | null;
  /** Method and factor format/tiling; each layer's weight format and rank come from the recipe. */
  settings: Omit<QuantSettings, 'weightFormat'>;
  activation?: ActivationQuantSpec | null;
  signal?: AbortSignal;
}

export interface RecipeEvaluation {
  float: MetricResult;
  results: { label: string; result: MetricResult }[];
  /** About the evaluation data (images left out of the CER for want of a label). */
  notes: string[];
}

/** The recipe's layers quantized as export would, paired with their graph sites. */
export async function quantizedSites(
  sites: LinearSite[],
  recipe: Recipe,
  o: Pick<RecipeEvaluationOptions, 'stats' | 'settings' | 'signal'>,
  read: (name: string) => Promise<{ data: Float32Array; out: number; in: number }>,
): Promise<{ site: LinearSite; layer: LayerAtRank }[]> {
  const out: { site: LinearSite; layer: LayerAtRank }[] = [];
  for (const site of sites) {
    const entry = recipe.layers[site.layer.name];
    if (!entry) continue;
    throwIfCancelled(o.signal);
    const w = await read(site.layer.name);
    // Every statistic the file has: fitted step sizes want the Gram even when the method does not.
    const calibration = o.stats ? await o.stats.layerCalibration(site.layer.name, w.in) : undefined;
    const input = {
      name: site.layer.name,
      data: w.data,
      out: w.out,
      in: w.in,
      ...(calibration ? { calibration } : {}),
    };
    const [layer] = await quantizeLayerAtRanks(
      input,
      { ...o.settings, weightFormat: entry.format },
      [entry.rank],
      o.signal,
    );
    out.push({ site, layer: layer! });
  }
  return out;
}

/** The float model's metric and each recipe's, on the same evaluation data. */
export async function evaluateRecipes(
  model: string,
  recipes: { label: string; recipe: Recipe }[],
  o: RecipeEvaluationOptions,
): Promise<RecipeEvaluation> {
  const m = await openOnnxLinearModel(model);
  let evaluator: Evaluator | undefined;
  try {
    evaluator = Evaluator.open(m, o);
    const float = await evaluator.evaluate(null, { signal: o.signal });
    const results: RecipeEvaluation['results'] = [];
    for (const { label, recipe } of recipes) {
      const layers = await quantizedSites(m.sites, recipe, o, (name) => m.checkpoint.readWeight(name, o.signal));
      const edits = quantizedGraphEdits(layers, m.opset, { activation: o.activation ?? null });
      results.push({ label, result: await evaluator.evaluate(edits, { signal: o.signal }) });
    }
    return { float, results, notes: evaluator.notes };
  } finally {
    await evaluator?.dispose();
    await m.close();
  }
}
