/**
 * What an export writes, decided before anything is computed: every layer to quantize with its
 * weight format and rank, from uniform settings or from a recipe. Every export target starts from
 * the same plan, so a recipe naming a layer the checkpoint lacks, or a rank the layer cannot hold,
 * is refused the same way whatever the target (the message names the recipe, the layer and the
 * value), and a target only has to say which of the plan's formats it cannot express.
 */
import { QuantLensError } from '../errors';
import type { Checkpoint, CheckpointFormat, LinearLayer } from '../readers/checkpoint';
import type { StatsFile } from '../calibration/statsFile';
import type { AnalysisSettings } from '../methods/analyzeLayer';
import { METHODS, type MethodName } from '../methods/methods';
import type { Recipe } from '../methods/recipe';
import { formatToString, parseFormat } from '../quantizers';
import { ggmlStorage } from '../quantizers/ggml/ggmlQuant';

/** The record of one exported layer; `stored` names the ggml type written when it is a fall-back. */
export interface LayerRecord {
  format: string;
  rank: number;
  method: string;
  stored?: string;
}

/** One layer as an export target sees it. */
export interface LayerExport {
  /** The weight tensor's name. */
  name: string;
  /** [out, in]. */
  shape: [number, number];
  /** Canonical format string (formatToString). */
  format: string;
  /** The rank of the correction actually written: 0 for RTN. */
  rank: number;
  /** True when the file stores the weight as [in, out] (GPT-2 Conv1D, ONNX MatMul). */
  storedTransposed?: boolean;
  /** Set when the layer is a slice of a stacked tensor (MoE experts stored together). */
  stackedIn?: string;
}

/** What a target needs to know to say whether it can express an export (pure data, UI-safe). */
export interface ExportSelection {
  checkpointFormat: CheckpointFormat;
  method: MethodName;
  factorFormat: string;
  /** In checkpoint order. */
  layers: LayerExport[];
}

/** The settings every layer shares; the weight format may differ per layer. */
export type ExportSettings = Omit<AnalysisSettings, 'maxRank' | 'spectra'>;

export interface ExportPlan extends ExportSelection {
  checkpoint: Checkpoint;
  settings: ExportSettings;
  stats: StatsFile | null;
  /** The checkpoint's LinearLayer for each planned layer name. */
  linear: Map<string, LinearLayer>;
  /** The uniform rank asked for (before capping per layer); null with a recipe. */
  uniformRank: number | null;
}

export interface PlanOptions {
  checkpoint: Checkpoint;
  /** Layers to quantize with `settings` and `rank` (ignored when a recipe is given). */
  layers: LinearLayer[];
  settings: ExportSettings;
  rank: number;
  recipe?: Recipe | null;
  /** The recipe's file, for messages. */
  recipeFile?: string;
  stats?: StatsFile | null;
}

function maxRankOf(shape: [number, number]): number {
  return Math.min(shape[0], shape[1]);
}

/**
 * The plan: with a recipe, exactly its layers (each must be a linear layer of the checkpoint, and
 * its rank at most min(out, in)); otherwise `layers`, each at the uniform rank capped at the
 * layer's own size (a uniform `--rank 32` on a model with a 16-wide layer means "full rank there").
 */
export function planExport(o: PlanOptions): ExportPlan {
  const ckpt = o.checkpoint;
  const recipe = o.recipe ?? null;
  const byName = new Map(ckpt.linearLayers.map((l) => [l.name, l]));
  const corrects = METHODS[o.settings.method].corrects;
  const chosen: { layer: LinearLayer; format: string; rank: number }[] = [];
  if (recipe) {
    const names = Object.keys(recipe.layers);
    if (names.length === 0) throw new QuantLensError('bad-argument', 'the recipe lists no layers', o.recipeFile);
    const unknown = names.filter((n) => !byName.has(n));
    if (unknown.length) {
      const shown = unknown
        .slice(0, 3)
        .map((n) => `"${n}"`)
        .join(', ');
      throw new QuantLensError(
        'bad-argument',
        `the recipe names ${unknown.length === 1 ? 'layer' : `${unknown.length} layers`} ${shown}${unknown.length > 3 ? ', …' : ''} that ${unknown.length === 1 ? 'is not a linear layer' : 'are not linear layers'} of ${ckpt.path} (see \`quant-lens layers\`)`,
        o.recipeFile,
      );
    }
    for (const layer of ckpt.linearLayers) {
      const entry = recipe.layers[layer.name];
      if (!entry) continue;
      const limit = maxRankOf(layer.shape);
      if (entry.rank > limit) {
        throw new QuantLensError(
          'bad-argument',
          `layer "${layer.name}": rank ${entry.rank} is above what the layer can hold (min(out, in) = ${limit} for [${layer.shape.join(', ')}])`,
          o.recipeFile,
        );
      }
      chosen.push({ layer, format: formatToString(parseFormat(entry.format)), rank: corrects ? entry.rank : 0 });
    }
  } else {
    const wanted = new Set(o.layers.map((l) => l.name));
    const format = formatToString(parseFormat(o.settings.weightFormat));
    for (const layer of ckpt.linearLayers) {
      if (!wanted.has(layer.name)) continue;
      chosen.push({ layer, format, rank: corrects ? Math.min(o.rank, maxRankOf(layer.shape)) : 0 });
    }
  }
  const linear = new Map<string, LinearLayer>();
  const layers: LayerExport[] = chosen.map(({ layer, format, rank }) => {
    linear.set(layer.name, layer);
    return {
      name: layer.name,
      shape: [layer.shape[0], layer.shape[1]],
      format,
      rank,
      ...(layer.storedTransposed ? { storedTransposed: true } : {}),
      ...(layer.tensor && layer.tensor !== layer.name ? { stackedIn: layer.tensor } : {}),
    };
  });
  return {
    checkpoint: ckpt,
    checkpointFormat: ckpt.format,
    method: o.settings.method,
    factorFormat: o.settings.factorFormat,
    settings: o.settings,
    stats: o.stats ?? null,
    layers,
    linear,
    uniformRank: recipe ? null : o.rank,
  };
}

/** The per-layer record every export result carries (and the safetensors metadata lists). */
export function layerRecords(plan: ExportSelection): Record<string, LayerRecord> {
  const out: Record<string, LayerRecord> = {};
  for (const l of plan.layers) {
    const f = parseFormat(l.format);
    const s = f.kind === 'ggml' ? ggmlStorage(f, l.shape[1]) : null;
    out[l.name] = { format: l.format, rank: l.rank, method: plan.method, ...(s?.fallback ? { stored: s.stored } : {}) };
  }
  return out;
}

/**
 * What the export did with llama.cpp formats, for its notes: the layers stored in a fall-back type
 * (grouped by reason, as llama-quantize would store them) and those quantized with importance
 * weights. Every target that quantizes says the same.
 */
export function ggmlNotes(plan: ExportSelection, nameOf: (layer: string) => string = (n) => n): string[] {
  const fallbacks = new Map<string, string[]>();
  let weighted = 0;
  for (const l of plan.layers) {
    const f = parseFormat(l.format);
    if (f.kind !== 'ggml') continue;
    const s = ggmlStorage(f, l.shape[1]);
    if (s.fallback) fallbacks.set(s.fallback, [...(fallbacks.get(s.fallback) ?? []), nameOf(l.name)]);
    if (s.imatrix) weighted++;
  }
  const notes = [...fallbacks].map(
    ([why, names]) =>
      `${names.length} weight${names.length === 1 ? '' : 's'} (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}): ${why}`,
  );
  if (weighted)
    notes.push(
      `${weighted} weight${weighted === 1 ? '' : 's'} quantized with importance weights (imatrix = act_rms² from the calibration)`,
    );
  return notes;
}
