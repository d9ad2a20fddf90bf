/**
 * NVIDIA ModelOpt's `hf_quant_config.json` for the per-layer formats: the file ModelOpt's HF export
 * writes beside a quantized checkpoint and TensorRT-LLM / vLLM / SGLang read to know each layer's
 * algorithm.
 *
 * Schema, as read in the public code (NVIDIA/Model-Optimizer @ a2fbac7,
 * `modelopt/torch/export/quant_utils.py: get_quant_config, process_layer_quant_config`):
 *   {"producer": {"name", "version"}, "quantization": {"quant_algo", "kv_cache_quant_algo",
 *    "quantized_layers": {"<module>": {"quant_algo", "group_size"?, …}}}}
 * with "quant_algo": "MIXED_PRECISION" when the layers use more than one configuration; with a
 * single configuration ModelOpt writes it flat instead ({"quant_algo", its fields,
 * "exclude_modules"}), and so does Quant Lens. Per-layer algorithms, as ModelOpt names them:
 * int4_awq → {"W4A16_AWQ", group_size, has_zero_point: false, pre_quant_scale}, int8_wo → "W8A16"
 * (per output channel), w4a16_nvfp4 → {"W4A16_NVFP4", group_size 16}, fp8 → "FP8" (per tensor),
 * fp8_pc_pt → "FP8_PER_CHANNEL_PER_TOKEN", mxfp8 → {"MXFP8", group_size 32}. TensorRT-LLM reads
 * the per-layer fields as its `QuantConfig` (quant_algo, group_size, has_zero_point,
 * pre_quant_scale; `tensorrt_llm/models/modeling_utils.py`) and matches the layer names with
 * fnmatch. `pre_quant_scale` is false here: Quant Lens applies no AWQ pre-quantization scale.
 * ModelOpt's INT4 is symmetric (no zero point), INT8 is per channel, and its only FP8 per-channel
 * algorithm also quantizes activations per token: formats outside this list are refused.
 */
import { parseFormat, type NumberFormat } from '../../quantizers';
import { writeOutputText } from '../../writers/safeOutput';
import { layerRecords, type ExportPlan, type ExportSelection } from '../plan';
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

export type LayerQuantConfig = Record<string, string | number | boolean>;

/** ModelOpt's per-layer config for a weight format; {} for an unquantized layer. */
export function modelOptLayerConfig(format: NumberFormat): LayerQuantConfig | Unmapped {
  const [r, c] = format.kind === 'float' ? [0, 0] : format.tile;
  switch (format.kind) {
    case 'int':
      if (format.bits === 4) {
        if (!format.symmetric) return { refused: "ModelOpt's INT4 (W4A16_AWQ) has no zero point: use int4:g<n>:sym" };
        if (r !== 1 || c < 1)
          return { refused: "ModelOpt's INT4 (W4A16_AWQ) is group-wise along the input: use int4:g<n>:sym" };
        return { quant_algo: 'W4A16_AWQ', group_size: c, has_zero_point: false, pre_quant_scale: false };
      }
      if (format.bits === 8) {
        if (!format.symmetric || r !== 1 || c !== -1)
          return { refused: "ModelOpt's INT8 weights (W8A16) are symmetric per output channel: use int8:channel:sym" };
        return { quant_algo: 'W8A16' };
      }
      return { refused: `ModelOpt quantizes integer weights to 4 or 8 bits, not ${format.bits}` };
    case 'nvfp4':
      if (r !== 1 || c !== 16) return { refused: 'NVFP4 in ModelOpt has blocks of 16' };
      return { quant_algo: 'W4A16_NVFP4', group_size: 16 };
    case 'fp8':
      if (r === 1 && c === -1) return { quant_algo: 'FP8_PER_CHANNEL_PER_TOKEN' };
      if (r === -1 && c === -1) return { quant_algo: 'FP8' };
      return { refused: "ModelOpt's FP8 weights are per tensor or per output channel (fp8, fp8:block=-1x-1)" };
    case 'mxfp':
      if (format.element === 'e4m3' && r === 1 && c === 32) return { quant_algo: 'MXFP8', group_size: 32 };
      if (format.element === 'e2m1') {
        return {
          refused:
            'ModelOpt names no weight-only MXFP4 algorithm in hf_quant_config (its export writes the untyped tag "mxfp4"); use the llm-compressor recipe or nvfp4',
        };
      }
      return {
        refused: `ModelOpt has MXFP8 (E4M3, blocks of 32), not ${format.element.toUpperCase()} with blocks of ${c}`,
      };
    case 'mxint':
      return { refused: 'ModelOpt has no shared-exponent integer (MXINT) format' };
    case 'ggml':
      return { refused: `${format.type} is a llama.cpp block format, stored only in GGUF: export --to gguf` };
    case 'float':
      return {};
  }
}

function refusals(selection: ExportSelection): ExportRefusal[] {
  const out = hfModuleRefusals(selection, 'a ModelOpt hf_quant_config.json');
  if (out.length && out[0]!.layer === null) return out;
  for (const l of selection.layers) {
    const cfg = modelOptLayerConfig(parseFormat(l.format));
    if (isUnmapped(cfg)) out.push({ layer: l.name, value: `format ${l.format}`, reason: cfg.refused });
  }
  return out;
}

export const modelOptTarget: ExportTarget = {
  id: 'modelopt',
  label: 'ModelOpt hf_quant_config.json',
  description: 'the per-layer quant_algo (MIXED_PRECISION with quantized_layers) that TensorRT-LLM and vLLM read',
  output: 'file',
  extension: 'json',
  defaultName: () => 'hf_quant_config.json',
  carriesCorrection: false,
  dtypes: [],
  refusals,
  write: writeModelOpt,
};

/** The hf_quant_config.json document for a plan whose layers all map. */
export function modelOptConfig(plan: ExportSelection & { linearNames?: string[] }): Record<string, unknown> {
  const quantized: Record<string, LayerQuantConfig> = {};
  const excluded: string[] = [];
  const planned = new Set(plan.layers.map((l) => l.name));
  for (const name of plan.linearNames ?? []) if (!planned.has(name)) excluded.push(moduleOf(name));
  const distinct = new Set<string>();
  for (const l of plan.layers) {
    const cfg = modelOptLayerConfig(parseFormat(l.format));
    if (isUnmapped(cfg)) throw new Error(`layer "${l.name}": ${cfg.refused}`);
    if (!cfg.quant_algo) {
      excluded.push(moduleOf(l.name));
      continue;
    }
    quantized[moduleOf(l.name)] = cfg;
    distinct.add(JSON.stringify(cfg));
  }
  const quantization: Record<string, unknown> =
    distinct.size > 1
      ? { quant_algo: 'MIXED_PRECISION', kv_cache_quant_algo: null, quantized_layers: quantized }
      : {
          ...(JSON.parse([...distinct][0] ?? '{"quant_algo":null}') as LayerQuantConfig),
          kv_cache_quant_algo: null,
          exclude_modules: excluded.sort(),
        };
  return { producer: { name: 'quant-lens' }, quantization };
}

async function writeModelOpt(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome> {
  const checked = run.output;
  const doc = modelOptConfig({ ...plan, linearNames: plan.checkpoint.linearLayers.map((l) => l.name) });
  await writeOutputText(checked, JSON.stringify(doc, null, 4) + '\n', run.signal);
  const notes = [
    'the file describes the formats; quantize with ModelOpt (or TensorRT-LLM) to get the matching tensors',
  ];
  if (plan.layers.some((l) => parseFormat(l.format).kind === 'fp8')) {
    notes.push("ModelOpt's FP8 algorithms quantize activations to FP8 as well (per token for the per-channel one)");
  }
  return {
    target: modelOptTarget.id,
    path: checked.path,
    files: [checked.destination],
    layers: layerRecords(plan),
    notes,
  };
}
