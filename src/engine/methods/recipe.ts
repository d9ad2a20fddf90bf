/**
 * A quantization recipe: per-layer weight format and rank, as chosen by the rank allocation view
 * and applied by `quant-lens export --recipe`. JSON:
 *   { "kind": "quant-lens-recipe", "version": 1, "method": "l2qer", "factorFormat": "mxint8",
 *     "layers": { "<weight name>": { "format": "mxint4", "rank": 16 }, … } }
 */
import { QuantLensError } from '../errors';
import { formatToString, parseFormat } from '../quantizers';

export interface RecipeLayer {
  format: string;
  rank: number;
}

export interface Recipe {
  kind: 'quant-lens-recipe';
  version: 1;
  method?: string;
  factorFormat?: string;
  /** What the allocation optimised, for the record. */
  objective?: string;
  budget?: { bitsPerWeight?: number; bytes?: number };
  layers: Record<string, RecipeLayer>;
}

export function parseRecipe(text: string, file?: string): Recipe {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QuantLensError('malformed', `recipe is not valid JSON (${(e as Error).message})`, file);
  }
  const bad = (why: string) => new QuantLensError('malformed', `recipe ${why}`, file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('must be a JSON object');
  const r = json as Record<string, unknown>;
  if (r.kind !== 'quant-lens-recipe') throw bad('has no "kind": "quant-lens-recipe"');
  if (r.version !== 1) throw bad(`version ${String(r.version)} is not supported (expected 1)`);
  if (typeof r.layers !== 'object' || r.layers === null || Array.isArray(r.layers))
    throw bad('needs a "layers" object');
  const layers: Record<string, RecipeLayer> = {};
  for (const [name, v] of Object.entries(r.layers as Record<string, unknown>)) {
    if (typeof v !== 'object' || v === null) throw bad(`layer "${name}" must be an object`);
    const e = v as Record<string, unknown>;
    if (typeof e.format !== 'string') throw bad(`layer "${name}" needs a "format" string`);
    if (!Number.isInteger(e.rank) || (e.rank as number) < 0)
      throw bad(`layer "${name}" needs a non-negative integer "rank"`);
    layers[name] = { format: formatToString(parseFormat(e.format)), rank: e.rank as number };
  }
  return {
    kind: 'quant-lens-recipe',
    version: 1,
    ...(typeof r.method === 'string' ? { method: r.method } : {}),
    ...(typeof r.factorFormat === 'string' ? { factorFormat: r.factorFormat } : {}),
    ...(typeof r.objective === 'string' ? { objective: r.objective } : {}),
    layers,
  };
}
