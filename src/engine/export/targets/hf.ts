/**
 * A Hugging Face checkpoint folder for `from_pretrained`, with the correction as a PEFT LoRA adapter:
 *
 *   <out>/model.safetensors                 every tensor under its source name; each quantized
 *     (or model-0000i-of-0000n.safetensors    weight holds W_q in the source layout, in the narrowest
 *      + model.safetensors.index.json)        of BF16/F16/F32 that holds it exactly (or --dtype)
 *   <out>/config.json, tokenizer files, …   the checkpoint folder's other files, copied
 *   <out>/adapter/adapter_config.json       peft_type LORA, r, lora_alpha, target_modules,
 *                                           rank_pattern / alpha_pattern for per-layer ranks
 *   <out>/adapter/adapter_model.safetensors base_model.model.<module>.lora_A.weight [k, in] and
 *                                           base_model.model.<module>.lora_B.weight [out, k]
 *
 * PEFT adds scaling·lora_B·lora_A to W, scaling = lora_alpha / r (`use_rslora` false), and its
 * `rank_pattern` / `alpha_pattern` keys are matched as `(.*\.)?<key>$` against module names
 * (huggingface/peft `LoraConfig`, `utils/other.py:get_pattern_key`). Quant Lens's correction is
 * Ŵ = W_q + (A·B)ᵀ with A [in, k], B [k, out], i.e. ΔW = Bᵀ·Aᵀ: so lora_A = Aᵀ, lora_B = Bᵀ and every
 * layer's alpha equals its rank (scaling 1, the factors unscaled). Sharding and the index follow
 * transformers' `save_pretrained` (`model-{i:05d}-of-{n:05d}.safetensors`, index `metadata.total_size`
 * and `weight_map`); shards hold at most `shardBytes` (default 5 GB) unless one tensor is larger.
 */
import { readdir, stat, readFile, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { QuantLensError } from '../../errors';
import { transpose } from '../../readers/layout';
import { isElementType, type ElementType } from '../../readers/dtypes';
import type { Checkpoint, TensorInfo } from '../../readers/checkpoint';
import { writeOutputFolder, type OutputSink } from '../../writers/safeOutput';
import { boundBytes, writeSafetensorsStream, type StreamTensor } from '../../writers/safetensorsStream';
import { ggmlNotes, layerRecords, type ExportPlan, type ExportSelection, type LayerExport } from '../plan';
import { once, reconstructPlanned } from '../layerWeights';
import { encodeAs, stored } from '../storage';
import {
  hfModuleRefusals,
  moduleOf,
  type ExportDType,
  type ExportOutcome,
  type ExportRefusal,
  type ExportWrite,
  type ExportTarget,
} from '../target';
import { rawCopyable, sourceFiles } from './quantLens';

export const DEFAULT_SHARD_BYTES = 5e9;

/** Files of a checkpoint folder that hold weights (never copied: the export writes its own). */
const WEIGHT_FILE =
  /(\.safetensors|\.safetensors\.index\.json|\.bin|\.bin\.index\.json|\.pt|\.pth|\.ckpt|\.gguf|\.onnx|\.onnx\.data|\.onnx_data|\.h5|\.msgpack|\.tflite|\.pb)$/i;

/** PEFT's task_type for a transformers architecture name, or null. */
function taskType(architecture: string | undefined): string | null {
  if (!architecture) return null;
  if (/ForCausalLM$/.test(architecture)) return 'CAUSAL_LM';
  if (/ForConditionalGeneration$|ForSeq2SeqLM$/.test(architecture)) return 'SEQ_2_SEQ_LM';
  if (/ForSequenceClassification$/.test(architecture)) return 'SEQ_CLS';
  if (/ForTokenClassification$/.test(architecture)) return 'TOKEN_CLS';
  if (/ForQuestionAnswering$/.test(architecture)) return 'QUESTION_ANS';
  return null;
}

/** The folder a checkpoint lives in (the one holding config.json). */
async function checkpointFolder(ckpt: Checkpoint): Promise<string> {
  const st = await stat(ckpt.path).catch(() => null);
  return st?.isDirectory() ? ckpt.path : dirname(ckpt.files[0]?.path ?? ckpt.path);
}

/** What a source tensor's copy is stored as: raw bytes, or decoded and re-encoded in its own float type. */
function sourceDtype(t: TensorInfo): ElementType | null {
  if (isElementType(t.dtype)) return t.dtype;
  const torch: Record<string, ElementType> = {
    float32: 'F32',
    float: 'F32',
    bfloat16: 'BF16',
    float16: 'F16',
    half: 'F16',
  };
  return torch[t.dtype] ?? null;
}

export const hfTarget: ExportTarget = {
  id: 'hf',
  label: 'Hugging Face checkpoint + PEFT adapter',
  description:
    'W_q under the same tensor names (sharded, config copied), the correction as a PEFT LoRA adapter in adapter/',
  output: 'folder',
  defaultName: (stem) => `${stem}-hf`,
  carriesCorrection: true,
  dtypes: ['F32', 'BF16', 'F16'],
  refusals: hfRefusals,
  write: writeHf,
};

function hfRefusals(selection: ExportSelection): ExportRefusal[] {
  const out = hfModuleRefusals(selection, 'a PEFT adapter');
  if (out.length && out[0]!.layer === null) return out;
  const corrected = selection.layers.filter((l) => l.rank > 0);
  const transposed = corrected.filter((l) => l.storedTransposed).length;
  if (transposed && transposed < corrected.length) {
    out.push({
      layer: null,
      value: 'a mix of Conv1D ([in, out]) and Linear ([out, in]) layers',
      reason: 'one PEFT adapter has one fan_in_fan_out setting for all its layers',
    });
  }
  return out;
}

/** A file copied from the checkpoint folder into the output, chunk by chunk. */
async function copyFile(from: string, sink: OutputSink): Promise<void> {
  const fh = await open(from, 'r');
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      await sink.write(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

interface Shard {
  tensors: StreamTensor[];
  bound: number;
}

function assignShards(tensors: StreamTensor[], limit: number): Shard[] {
  const shards: Shard[] = [];
  let cur: Shard | null = null;
  for (const t of tensors) {
    const b = boundBytes(t);
    if (!cur || (cur.bound + b > limit && cur.tensors.length > 0)) shards.push((cur = { tensors: [], bound: 0 }));
    cur.tensors.push(t);
    cur.bound += b;
  }
  return shards;
}

interface Factors {
  layer: LayerExport;
  a: { dtype: ExportDType; bytes: Uint8Array };
  b: { dtype: ExportDType; bytes: Uint8Array };
}

async function writeHf(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome> {
  const ckpt = plan.checkpoint;
  const dtype = run.dtype ?? null;
  const folder = await checkpointFolder(ckpt);
  const checked = run.output;
  const planned = new Map(plan.layers.map((l) => [l.name, l]));
  const files = sourceFiles();
  const factors: Factors[] = [];
  const storedAs = new Map<string, number>();
  let done = 0;

  const tensors: StreamTensor[] = ckpt.tensors.map((t): StreamTensor => {
    const l = planned.get(t.name);
    if (!l) {
      const raw = rawCopyable(ckpt, t);
      if (raw) {
        return {
          name: t.name,
          shape: t.shape,
          dtype: raw,
          produce: async () => ({
            dtype: raw,
            bytes: await (await files.get(t.file)).read(t.offset!, t.byteLength, t.name),
          }),
        };
      }
      const own = sourceDtype(t);
      const as: ExportDType = own === 'BF16' || own === 'F16' ? own : 'F32';
      if (t.decodable !== true) {
        throw new QuantLensError(
          'unsupported',
          `tensor "${t.name}" (${t.dtype}) cannot be copied: ${t.decodable.reason}`,
          t.file,
        );
      }
      return {
        name: t.name,
        shape: t.shape,
        dtype: as,
        produce: async () => ({ dtype: as, bytes: encodeAs(await ckpt.readTensor(t.name), as) }),
      };
    }
    const linear = plan.linear.get(l.name)!;
    return {
      name: t.name,
      shape: t.shape,
      dtype,
      produce: once(async () => {
        const r = await reconstructPlanned(plan, l, run.signal);
        run.onLayer?.(++done, plan.layers.length, l.name);
        const w = stored(linear.storedTransposed ? transpose(r.wq, r.out, r.in) : r.wq, dtype);
        storedAs.set(w.dtype, (storedAs.get(w.dtype) ?? 0) + 1);
        if (l.rank > 0) {
          // lora_A = Aᵀ [k, in], lora_B = Bᵀ [out, k].
          factors.push({
            layer: l,
            a: stored(transpose(r.a, r.in, r.rank), dtype),
            b: stored(transpose(r.b, r.rank, r.out), dtype),
          });
        }
        return w;
      }),
    };
  });

  const shards = assignShards(tensors, run.shardBytes ?? DEFAULT_SHARD_BYTES);
  const names =
    shards.length === 1
      ? ['model.safetensors']
      : shards.map(
          (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`,
        );
  const metadata = {
    format: 'pt',
    quant_lens: JSON.stringify({
      method: plan.method,
      factorFormat: plan.factorFormat,
      layers: layerRecords(plan),
      reconstruction:
        'W_hat = W + scaling * lora_B @ lora_A with the adapter in adapter/ (scaling 1: lora_alpha = r per layer)',
    }),
  };
  const written: string[] = [];
  const notes: string[] = ggmlNotes(plan);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const copies = (await readdir(folder, { withFileTypes: true }))
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !WEIGHT_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
  const config = copies.includes('config.json')
    ? (JSON.parse(await readFile(join(folder, 'config.json'), 'utf8').catch(() => '{}')) as {
        architectures?: string[];
      })
    : null;
  if (!config) notes.push(`no config.json beside the checkpoint (${folder}): the folder has the weights only`);

  try {
    await writeOutputFolder(
      checked,
      async (out) => {
        for (let i = 0; i < shards.length; i++) {
          const name = names[i]!;
          await out.writeFile(name, async (sink) => {
            for (const t of await writeSafetensorsStream(sink, shards[i]!.tensors, metadata, run.signal)) {
              weightMap[t.name] = name;
              totalSize += t.bytes;
            }
          });
          written.push(name);
        }
        if (shards.length > 1) {
          const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
          await out.writeText(
            'model.safetensors.index.json',
            JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sorted }, null, 2) + '\n',
          );
          written.push('model.safetensors.index.json');
        }
        for (const name of copies) {
          await out.writeFile(name, (sink) => copyFile(join(folder, name), sink));
          written.push(name);
        }
        if (factors.length) {
          const adapterTensors: StreamTensor[] = [];
          for (const f of factors) {
            const prefix = `base_model.model.${moduleOf(f.layer.name)}`;
            const [nOut, nIn] = f.layer.shape;
            adapterTensors.push({
              name: `${prefix}.lora_A.weight`,
              shape: [f.layer.rank, nIn],
              dtype: f.a.dtype,
              produce: () => Promise.resolve(f.a),
            });
            adapterTensors.push({
              name: `${prefix}.lora_B.weight`,
              shape: [nOut, f.layer.rank],
              dtype: f.b.dtype,
              produce: () => Promise.resolve(f.b),
            });
          }
          await out.writeFile('adapter/adapter_model.safetensors', (sink) =>
            writeSafetensorsStream(sink, adapterTensors, { format: 'pt' }, run.signal).then(() => undefined),
          );
          await out.writeText(
            'adapter/adapter_config.json',
            JSON.stringify(adapterConfig(factors, config, checked.destination), null, 2) + '\n',
          );
          written.push('adapter/adapter_model.safetensors', 'adapter/adapter_config.json');
        }
      },
      run.signal,
    );
  } finally {
    await files.close();
  }
  if (!factors.length) notes.push('no layer has a correction (rank 0 or RTN): no adapter written');
  const kinds = [...storedAs.entries()].map(([d, n]) => `${n} as ${d}`).join(', ');
  notes.push(
    dtype
      ? `W_q stored as ${dtype}${dtype !== 'F32' ? ' (rounded where the values need more precision)' : ''}`
      : `W_q stored in the narrowest dtype holding it exactly: ${kinds}`,
  );
  return {
    target: hfTarget.id,
    path: checked.path,
    files: written.map((n) => join(checked.destination, n)),
    layers: layerRecords(plan),
    tensors: tensors.length + factors.length * 2,
    notes,
  };
}

function adapterConfig(
  factors: Factors[],
  config: { architectures?: string[] } | null,
  baseFolder: string,
): Record<string, unknown> {
  // The most common rank is `r`; the others go to rank_pattern. Each layer's alpha is its rank.
  const counts = new Map<number, number>();
  for (const f of factors) counts.set(f.layer.rank, (counts.get(f.layer.rank) ?? 0) + 1);
  const r = [...counts.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0]![0];
  const rankPattern: Record<string, number> = {};
  for (const f of factors) if (f.layer.rank !== r) rankPattern[moduleOf(f.layer.name)] = f.layer.rank;
  return {
    peft_type: 'LORA',
    task_type: taskType(config?.architectures?.[0]),
    base_model_name_or_path: baseFolder,
    r,
    lora_alpha: r,
    rank_pattern: rankPattern,
    alpha_pattern: { ...rankPattern },
    target_modules: factors.map((f) => moduleOf(f.layer.name)),
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: factors.every((f) => f.layer.storedTransposed),
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
  };
}
