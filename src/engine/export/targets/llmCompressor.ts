/**
 * An llm-compressor recipe (YAML) applying each layer's weight format: one `QuantizationModifier`
 * whose `config_groups` each hold one `weights` scheme and the `re:` patterns of the layers that
 * use it, layers left in float in `ignore`. Weight-only (no `input_activations`): activations stay
 * in the model's dtype, as Quant Lens analysed them.
 *
 * Schema, as read in the public code (vllm-project/llm-compressor @ ab1ba3e, compressed-tensors
 * @ ac8e2ba):
 * - recipe files: top-level `<name>_stage` → `<name>_modifiers` → `{ModifierType: args}`
 *   (`llmcompressor/recipe/recipe.py: Recipe.from_dict`), loaded with `yaml.safe_load`;
 *   `QuantizationModifier` takes `config_groups`, `targets`, `ignore`
 *   (`modifiers/quantization/quantization/mixin.py`).
 * - a group is a `QuantizationScheme` (`targets: list[str]`, `weights: QuantizationArgs`, extra
 *   keys forbidden); `QuantizationArgs` (`quantization/quant_args.py`, extra keys forbidden):
 *   `num_bits`, `type` int|float, `symmetric`, `strategy` tensor|channel|group|block|tensor_group,
 *   `group_size` (required > 0 for group / tensor_group, forbidden otherwise), `block_structure`
 *   [rows, cols] (block only), `dynamic`, `scale_dtype` (a torch dtype name).
 * - a target "re:<pattern>" matches a module name with Python `re.match` (anchored at the start
 *   only; `utils/match.py: match_name`), so each pattern here ends with `$`.
 * - MXFP4 / MXFP8 are float groups of 32 with `scale_dtype: uint8` (E8M0 exponents,
 *   `utils/mxfp_utils.py: should_generate_mx_scales`); NVFP4 is `tensor_group` of 16 with an FP8
 *   E4M3 scale (`quant_scheme.py: NVFP4A16`); FP8 is E4M3 (`FP8_E4M3_DATA`).
 * - group and tensor_group layers must have in % group_size == 0 or llm-compressor refuses them
 *   (`modifiers/quantization/group_size_validation.py`).
 * llm-compressor computes its own scales (min/max observers by default; its symmetric INT scale is
 * max|x| / ((2^b − 1)/2), Quant Lens's max|x| / (2^(b−1) − 1)), so the recipe carries the choice of
 * formats, not Quant Lens's W_q bit for bit.
 */
import { QuantLensError } from '../../errors';
import { parseFormat, type NumberFormat } from '../../quantizers';
import { writeOutputText } from '../../writers/safeOutput';
import { layerRecords, type ExportPlan, type ExportSelection, type LayerExport } from '../plan';
import {
  hfModuleRefusals,
  isUnmapped,
  type Unmapped,
  moduleOf,
  type ExportOutcome,
  type ExportRefusal,
  type ExportWrite,
  type ExportTarget,
} from '../target';
import { toYaml, type YamlValue } from '../yaml';

/** compressed-tensors QuantizationArgs for weights, or why the format has none. */
export type WeightArgs = Record<string, string | number | boolean | number[]>;

export function compressedTensorsArgs(format: NumberFormat, inFeatures: number): WeightArgs | Unmapped {
  const groupOf = (size: number): WeightArgs | Unmapped => {
    if (inFeatures >= size && inFeatures % size !== 0) {
      return {
        refused: `${inFeatures} input channels do not split into groups of ${size} (llm-compressor requires in % group_size == 0)`,
      };
    }
    return { strategy: 'group', group_size: size };
  };
  /** The strategy a tile [rows, cols] over W[out, in] is in compressed-tensors' words. */
  const strategy = (tile: readonly [number, number]): WeightArgs | Unmapped => {
    const [r, c] = tile;
    if (r === 1 && c === -1) return { strategy: 'channel' };
    if (r === -1 && c === -1) return { strategy: 'tensor' };
    if (r === 1) return groupOf(c);
    if (r > 1 && c > 0) return { strategy: 'block', block_structure: [r, c] };
    return { refused: `blocks of ${r}×${c} have no compressed-tensors strategy` };
  };
  const merge = (base: WeightArgs, s: WeightArgs | Unmapped) => (isUnmapped(s) ? s : { ...base, ...s, dynamic: false });
  switch (format.kind) {
    case 'int':
      return merge({ num_bits: format.bits, type: 'int', symmetric: format.symmetric }, strategy(format.tile));
    case 'fp8':
      return merge({ num_bits: 8, type: 'float', symmetric: true }, strategy(format.tile));
    case 'nvfp4':
      if (format.tile[0] !== 1 || format.tile[1] !== 16)
        return { refused: 'NVFP4 in compressed-tensors has blocks of 16' };
      return merge(
        { num_bits: 4, type: 'float', symmetric: true, scale_dtype: 'float8_e4m3fn' },
        { strategy: 'tensor_group', group_size: 16 },
      );
    case 'mxfp': {
      const bits = format.element === 'e2m1' ? 4 : format.element === 'e4m3' ? 8 : null;
      if (bits === null)
        return {
          refused: `compressed-tensors has MXFP4 (E2M1) and MXFP8 (E4M3) elements, not ${format.element.toUpperCase()}`,
        };
      if (format.tile[0] !== 1 || format.tile[1] !== 32)
        return { refused: 'compressed-tensors MX formats have blocks of 32' };
      const g = groupOf(32);
      return isUnmapped(g)
        ? g
        : { num_bits: bits, type: 'float', symmetric: true, ...g, dynamic: false, scale_dtype: 'uint8' };
    }
    case 'mxint':
      return {
        refused: 'compressed-tensors has no shared-exponent integer (MXINT) type; int<b>:g<n> or mxfp4 are the nearest',
      };
    case 'ggml':
      return { refused: `${format.type} is a llama.cpp block format, stored only in GGUF: export --to gguf` };
    case 'float':
      return {};
  }
}

/** A Python `re` pattern matching exactly this module name. */
export function exactPattern(module: string): string {
  return `re:^${module.replace(/[^A-Za-z0-9_]/g, (c) => `\\${c}`)}$`;
}

function refusals(selection: ExportSelection): ExportRefusal[] {
  const out = hfModuleRefusals(selection, 'an llm-compressor recipe');
  if (out.length && out[0]!.layer === null) return out;
  for (const l of selection.layers) {
    const args = compressedTensorsArgs(parseFormat(l.format), l.shape[1]);
    if (isUnmapped(args)) out.push({ layer: l.name, value: `format ${l.format}`, reason: args.refused });
  }
  return out;
}

export const llmCompressorTarget: ExportTarget = {
  id: 'llm-compressor',
  label: 'llm-compressor recipe',
  description:
    'a QuantizationModifier recipe (YAML): config_groups with each format and the re: patterns of its layers',
  output: 'file',
  extension: 'yaml',
  defaultName: (stem) => `${stem}.llm-compressor.yaml`,
  carriesCorrection: false,
  dtypes: [],
  refusals,
  write: writeRecipe,
};

/** The recipe document for a plan whose layers all map (see `refusals`). */
export function llmCompressorRecipe(plan: ExportSelection & { linearNames?: string[] }): YamlValue {
  const groups = new Map<string, { args: WeightArgs; targets: string[] }>();
  const ignore: string[] = [];
  const planned = new Set(plan.layers.map((l) => l.name));
  for (const name of plan.linearNames ?? []) if (!planned.has(name)) ignore.push(moduleOf(name));
  for (const l of plan.layers) {
    const args = compressedTensorsArgs(parseFormat(l.format), l.shape[1]);
    if (isUnmapped(args)) throw new QuantLensError('bad-argument', `layer "${l.name}": ${args.refused}`);
    if (Object.keys(args).length === 0) {
      ignore.push(moduleOf(l.name));
      continue;
    }
    const key = JSON.stringify(args);
    const g = groups.get(key) ?? { args, targets: [] };
    g.targets.push(exactPattern(moduleOf(l.name)));
    groups.set(key, g);
  }
  const configGroups: Record<string, YamlValue> = {};
  [...groups.values()].forEach((g, i) => {
    configGroups[`group_${i}`] = { targets: g.targets, weights: g.args };
  });
  return {
    quant_stage: {
      quant_modifiers: {
        QuantizationModifier: { ignore, config_groups: configGroups },
      },
    },
  };
}

async function writeRecipe(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome> {
  const checked = run.output;
  const formats = [...new Set(plan.layers.map((l: LayerExport) => l.format))].join(', ');
  const doc = llmCompressorRecipe({ ...plan, linearNames: plan.checkpoint.linearLayers.map((l) => l.name) });
  const text = toYaml(doc, [
    `llm-compressor recipe written by Quant Lens for ${plan.checkpoint.path}`,
    `${plan.layers.length} layers, weight formats ${formats}; weight-only (activations unquantized).`,
    "llm-compressor computes its own scales: the recipe carries the formats, not Quant Lens's W_q.",
    'Apply: from llmcompressor import oneshot; oneshot(model=<model>, recipe=<this file>, output_dir=<out>)',
  ]);
  await writeOutputText(checked, text, run.signal);
  return {
    target: llmCompressorTarget.id,
    path: checked.path,
    files: [checked.destination],
    layers: layerRecords(plan),
    notes: [
      'llm-compressor computes its own scales (min/max observers by default): the recipe carries the formats, not the exact W_q',
    ],
  };
}
