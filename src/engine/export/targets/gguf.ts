/**
 * GGUF export for llama.cpp: `<dir>/model.gguf` with every planned linear weight in the llama.cpp
 * type the plan chose (ggml's own bytes, llama-quantize's fall-back where rows do not split into
 * the type's blocks), and `<dir>/lora.gguf`, the low-rank correction as a llama.cpp LoRA adapter,
 * when a layer has rank > 0. `llama-cli -m model.gguf --lora lora.gguf` then computes with
 * Ŵ = W_q + (A·B)ᵀ.
 *
 * From a Hugging Face Llama-family checkpoint, tensor names, the q/k row permutation and the
 * `llama.*` keys follow llama.cpp's convert_hf_to_gguf.py; a byte-level BPE tokenizer.json becomes
 * the `tokenizer.ggml.*` keys. From a GGUF checkpoint, every key (tokenizer included) and every
 * tensor the plan does not touch is copied as it is.
 *
 * The adapter follows convert_lora_to_gguf.py and llama.cpp's loader (llama-adapter.cpp): for a
 * weight W with ne = [in, out], `<name>.lora_a` has ne = [in, k] (Aᵀ) and `<name>.lora_b`
 * ne = [k, out] (Bᵀ, its rows permuted like W's), and the loader scales B·A by alpha / k (k read
 * from lora_b), or by 1 when alpha is 0. token_embd takes A and B the other way round, as
 * llama.cpp's embedding lookup expects (lora_a ne = [k, vocab], lora_b ne = [k, n_embd]).
 */
import { QuantLensError, throwIfCancelled } from '../../errors';
import { RandomAccessFile } from '../../readers/fileAccess';
import { readGgufHeader, type GgufHeader } from '../../readers/gguf/ggufHeader';
import type { TensorInfo } from '../../readers/checkpoint';
import { f16Bytes, bf16Bytes, f32Bytes } from '../../writers/safetensorsWriter';
import { writeOutputFolder, type OutputSink } from '../../writers/safeOutput';
import { writeGguf, type GgufMetadataValue, type GgufTensorToWrite } from '../../writers/ggufWriter';
import { parseFormat } from '../../quantizers';
import {
  dequantizeGgml,
  ggmlTypeInfo,
  placeGgml,
  quantizeGgml,
  type GgmlWeightType,
} from '../../quantizers/ggml/ggmlQuant';
import { reconstructLayer } from '../../methods/reconstruct';
import { importanceOf } from '../../methods/analyzeLayer';
import { ggmlNotes, layerRecords, type ExportPlan, type ExportSelection, type LayerExport } from '../plan';
import type { ExportOutcome, ExportRefusal, ExportTarget, ExportWrite } from '../target';
import {
  bpeTokenizerMetadata,
  checkpointFolder,
  llamaGgufName,
  llamaMetadata,
  permuteHeadRows,
  permutedHeads,
  readLlamaConfig,
} from '../llamaGguf';

const F32 = 0;
const F16 = 1;
const BF16 = 30;

/** llama_ftype of a model whose weights are mostly in one type (informational in llama.cpp). */
const FILE_TYPE: Record<GgmlWeightType, number> = {
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q2_k: 10,
  q3_k: 11,
  q4_k: 14,
  q5_k: 16,
  q6_k: 18,
};

/** What GGUF can store for a planned layer: a llama.cpp type, or an unquantized float. */
export function ggufLayerType(format: string): { ggml: GgmlWeightType; imatrix: boolean } | { float: 16 | 32 } | null {
  const f = parseFormat(format);
  if (f.kind === 'ggml') return { ggml: f.type, imatrix: f.imatrix };
  if (f.kind === 'float') return { float: f.bits };
  return null;
}

/** Formats, stacked experts and transposed weights a GGUF (or a tensor-type file) cannot express. */
export function ggufRefusals(selection: ExportSelection, what: string): ExportRefusal[] {
  const out: ExportRefusal[] = [];
  for (const l of selection.layers) {
    if (l.stackedIn) {
      out.push({
        layer: l.name,
        value: `a slice of the stacked tensor "${l.stackedIn}"`,
        reason: `${what} of stacked expert tensors is not supported`,
      });
    } else if (l.storedTransposed) {
      out.push({
        layer: l.name,
        value: 'a weight stored as [in, out]',
        reason: `${what} handles Llama-family linear weights ([out, in]) only`,
      });
    } else if (!ggufLayerType(l.format)) {
      out.push({
        layer: l.name,
        value: l.format,
        reason: `${what} holds llama.cpp's types (q2_k…q6_k, q4_0…q8_0) or fp16/fp32; choose one of those for this layer`,
      });
    }
  }
  return out;
}

export const ggufTarget: ExportTarget = {
  id: 'gguf',
  label: 'GGUF + LoRA adapter (llama.cpp)',
  description:
    'model.gguf with each weight in its llama.cpp type, and lora.gguf with the correction (llama-cli --lora)',
  output: 'folder',
  defaultName: (stem) => `${stem}-gguf`,
  carriesCorrection: true,
  dtypes: [],
  refusals: (selection) => ggufRefusals(selection, 'a GGUF export'),
  write: writeGgufExport,
};

interface LayerResult {
  /** ggml type id and bytes of the weight as stored in model.gguf. */
  typeId: number;
  bytes: Uint8Array;
  /** lora_a / lora_b data and dims, when rank > 0. */
  lora: { a: Float32Array; aDims: number[]; b: Float32Array; bDims: number[] } | null;
}

/** The source side: how tensors are named, permuted and copied. */
interface Source {
  architecture: string;
  /** GGUF name of a checkpoint tensor; null: dropped. */
  name(t: TensorInfo): string | null;
  /** Heads whose rows are permuted (HF q/k), or null. */
  heads(t: TensorInfo): number | null;
  metadata: [string, GgufMetadataValue][];
  notes: string[];
  /** A tensor the plan does not quantize, as GGUF stores it. */
  copy(t: TensorInfo): { typeId: number; dims: number[]; bytes: () => Promise<Uint8Array> };
  close(): Promise<void>;
}

function ggmlDims(shape: readonly number[]): number[] {
  return [...shape].reverse();
}

async function hfLlamaSource(plan: ExportPlan): Promise<Source> {
  const ckpt = plan.checkpoint;
  const folder = await checkpointFolder(ckpt.path);
  const family = ckpt.family ?? null;
  if (family !== 'llama') {
    throw new QuantLensError(
      'unsupported',
      `the GGUF export converts Llama-family checkpoints (this one is ${ckpt.architecture ?? family ?? 'of an unknown architecture'}); convert it with llama.cpp's convert_hf_to_gguf.py and export --to tensor-types instead`,
      ckpt.path,
    );
  }
  const config = await readLlamaConfig(folder);
  const notes: string[] = [];
  const tokenizer = await bpeTokenizerMetadata(folder, config);
  const metadata = llamaMetadata(config);
  if ('metadata' in tokenizer) metadata.push(...tokenizer.metadata);
  else notes.push(`no tokenizer written (${tokenizer.reason}): llama.cpp needs one to run the model`);
  const names = new Map<string, string | null>();
  for (const t of ckpt.tensors) {
    const n = llamaGgufName(t.name);
    if (n === undefined) {
      throw new QuantLensError(
        'unsupported',
        `tensor "${t.name}" is not one of a Llama model's tensors; the GGUF export would not know its llama.cpp name`,
        t.file,
      );
    }
    names.set(t.name, n);
  }
  return {
    architecture: 'llama',
    name: (t) => names.get(t.name) ?? null,
    heads: (t) => permutedHeads(t.name, config),
    metadata,
    notes,
    copy(t) {
      const heads = permutedHeads(t.name, config);
      const dtype = t.shape.length >= 2 ? t.dtype : 'F32';
      const typeId = dtype === 'F16' ? F16 : dtype === 'BF16' ? BF16 : F32;
      return {
        typeId,
        dims: ggmlDims(t.shape),
        bytes: async () => {
          let v = await ckpt.readTensor(t.name);
          if (heads !== null) v = permuteHeadRows(v, t.shape[0] ?? 1, heads);
          return typeId === F16 ? f16Bytes(v) : typeId === BF16 ? bf16Bytes(v) : f32Bytes(v);
        },
      };
    },
    close: async () => undefined,
  };
}

/** GGUF keys written by the export itself rather than copied from a GGUF source. */
const OWN_KEYS = new Set(['general.alignment', 'general.file_type', 'general.quantization_version']);

async function ggufSource(plan: ExportPlan): Promise<Source> {
  const ckpt = plan.checkpoint;
  const file = await RandomAccessFile.open(ckpt.path);
  try {
    const header: GgufHeader = readGgufHeader(file);
    const arch = header.metadata.get('general.architecture');
    if (typeof arch !== 'string') throw new QuantLensError('malformed', 'GGUF has no general.architecture', ckpt.path);
    const metadata: [string, GgufMetadataValue][] = [];
    for (const [key, range] of header.rawValues) {
      if (OWN_KEYS.has(key)) continue;
      metadata.push([
        key,
        { type: 'raw', bytes: Uint8Array.from(file.readSync(range.offset, range.length, `metadata "${key}"`)) },
      ]);
    }
    const infos = new Map(header.tensors.map((t) => [t.name, t]));
    return {
      architecture: arch,
      name: (t) => t.name,
      heads: () => null,
      metadata,
      notes: [],
      copy(t) {
        const info = infos.get(t.name);
        if (!info?.type)
          throw new QuantLensError(
            'unsupported',
            `tensor "${t.name}" has a ggml type Quant Lens cannot copy`,
            ckpt.path,
          );
        return {
          typeId: info.typeId,
          dims: info.dims,
          bytes: async () => Uint8Array.from(await file.read(info.offset, info.byteLength, t.name)),
        };
      },
      close: () => file.close(),
    };
  } catch (e) {
    await file.close();
    throw e;
  }
}

/** Aᵀ as [k][in] (row-major), from A [in, k]. */
function transposeFactor(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[i * cols + j]!;
  return out;
}

async function computeLayer(
  plan: ExportPlan,
  l: LayerExport,
  heads: number | null,
  isEmbedding: boolean,
  signal?: AbortSignal,
): Promise<LayerResult> {
  throwIfCancelled(signal);
  const w = await plan.checkpoint.readWeight(l.name, signal);
  const calibration = plan.stats ? await plan.stats.layerCalibration(l.name, w.in) : undefined;
  const r = await reconstructLayer(
    { name: l.name, data: w.data, out: w.out, in: w.in, ...(calibration ? { calibration } : {}) },
    { ...plan.settings, weightFormat: l.format },
    l.rank,
    signal,
  );
  const kind = ggufLayerType(l.format);
  if (!kind) throw new Error(`no GGUF type for ${l.format}`);
  let typeId: number;
  let bytes: Uint8Array;
  if ('ggml' in kind) {
    const stored = placeGgml(kind.ggml, w.in).stored;
    const importance = kind.imatrix ? importanceOf(calibration, w.in) : null;
    bytes = quantizeGgml(w.data, w.out, w.in, stored, importance);
    typeId = ggmlTypeInfo(stored).id;
    // The bytes are what the analysis measured: W_q decoded from them is Quant Lens's W_q.
    const decoded = dequantizeGgml(bytes, stored, w.data.length);
    for (let i = 0; i < decoded.length; i++) {
      if (!Object.is(decoded[i], r.wq[i]) && !(Number.isNaN(decoded[i]) && Number.isNaN(r.wq[i]))) {
        throw new Error(`${l.name}: the GGUF bytes do not decode to W_q at element ${i}`);
      }
    }
  } else {
    // Unquantized (fp16 / fp32 "formats" leave W as it is): F32 holds it exactly.
    typeId = F32;
    bytes = f32Bytes(r.wq);
  }
  if (heads !== null) bytes = permuteHeadRows(bytes, w.out, heads);
  let lora: LayerResult['lora'] = null;
  const k = r.rank;
  if (k > 0) {
    // Bᵀ [out][k]; its rows are the weight's rows, so they move with the q/k permutation.
    let bT = transposeFactor(r.b, k, w.out);
    if (heads !== null) bT = permuteHeadRows(bT, w.out, heads);
    lora = isEmbedding
      ? { a: bT, aDims: [k, w.out], b: r.a, bDims: [k, w.in] }
      : { a: transposeFactor(r.a, w.in, k), aDims: [w.in, k], b: bT, bDims: [k, w.out] };
  }
  return { typeId, bytes, lora };
}

async function writeGgufExport(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome> {
  const ckpt = plan.checkpoint;
  const source = ckpt.format === 'gguf' ? await ggufSource(plan) : await hfLlamaSource(plan);
  const notes = [...source.notes];
  try {
    const planned = new Map(plan.layers.map((l) => [l.name, l]));
    const loraTensors: GgufTensorToWrite[] = [];
    const modelTensors: GgufTensorToWrite[] = [];
    const typeCounts = new Map<GgmlWeightType, number>();
    let done = 0;
    for (const t of ckpt.tensors) {
      const name = source.name(t);
      if (name === null) continue;
      const l = planned.get(t.name);
      if (!l) {
        const c = source.copy(t);
        modelTensors.push({ name, dims: c.dims, typeId: c.typeId, bytes: c.bytes });
        continue;
      }
      const kind = ggufLayerType(l.format);
      if (kind && 'ggml' in kind) typeCounts.set(kind.ggml, (typeCounts.get(kind.ggml) ?? 0) + l.shape[0] * l.shape[1]);
      const heads = source.heads(t);
      let result: Promise<LayerResult> | undefined;
      const compute = () =>
        (result ??= computeLayer(plan, l, heads, name === 'token_embd.weight', run.signal).then((r) => {
          run.onLayer?.(++done, plan.layers.length, l.name);
          return r;
        }));
      const [nOut, nIn] = l.shape;
      const kind2 = ggufLayerType(l.format)!;
      const typeId = 'ggml' in kind2 ? ggmlTypeInfo(placeGgml(kind2.ggml, nIn).stored).id : F32;
      modelTensors.push({ name, dims: [nIn, nOut], typeId, bytes: async () => (await compute()).bytes });
      if (l.rank > 0) {
        const embedding = name === 'token_embd.weight';
        loraTensors.push({
          name: `${name}.lora_a`,
          dims: embedding ? [l.rank, nOut] : [nIn, l.rank],
          typeId: F32,
          bytes: async () => f32Bytes((await compute()).lora!.a),
        });
        loraTensors.push({
          name: `${name}.lora_b`,
          dims: embedding ? [l.rank, nIn] : [l.rank, nOut],
          typeId: F32,
          bytes: async () => f32Bytes((await compute()).lora!.b),
        });
      }
    }
    const mostly = [...typeCounts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    const general: [string, GgufMetadataValue][] = [
      ['general.architecture', { type: 'string', value: source.architecture }],
      ['general.quantization_version', { type: 'u32', value: 2 }],
      ['general.file_type', { type: 'u32', value: mostly ? FILE_TYPE[mostly] : 0 }],
    ];
    const modelMetadata = [...general, ...source.metadata.filter(([k]) => k !== 'general.architecture')];
    if (!modelMetadata.some(([k]) => k === 'general.type'))
      modelMetadata.push(['general.type', { type: 'string', value: 'model' }]);
    const ranks = new Set(plan.layers.filter((l) => l.rank > 0).map((l) => l.rank));
    // alpha / k = 1 keeps Ŵ = W_q + (A·B)ᵀ; with several ranks no one alpha does, and llama.cpp
    // reads alpha 0 as "scale 1" for every tensor.
    const alpha = ranks.size === 1 ? [...ranks][0]! : 0;
    const files = ['model.gguf'];
    await writeOutputFolder(
      run.output,
      async (folder) => {
        await folder.writeFile('model.gguf', (sink: OutputSink) =>
          writeGguf(sink, modelMetadata, modelTensors, run.signal),
        );
        if (loraTensors.length) {
          files.push('lora.gguf');
          const loraMetadata: [string, GgufMetadataValue][] = [
            ['general.architecture', { type: 'string', value: source.architecture }],
            ['general.type', { type: 'string', value: 'adapter' }],
            ['general.name', { type: 'string', value: 'Quant Lens low-rank correction' }],
            ['adapter.type', { type: 'string', value: 'lora' }],
            ['adapter.lora.alpha', { type: 'f32', value: alpha }],
          ];
          await folder.writeFile('lora.gguf', (sink) => writeGguf(sink, loraMetadata, loraTensors, run.signal));
        }
      },
      run.signal,
    );
    const ggufNames = new Map(ckpt.tensors.map((t) => [t.name, source.name(t) ?? t.name]));
    notes.push(...ggmlNotes(plan, (n) => ggufNames.get(n) ?? n));
    if (loraTensors.length && alpha === 0) {
      notes.push(
        'the layers have different ranks: lora.gguf has adapter.lora.alpha = 0, which llama.cpp reads as scale 1 for every tensor',
      );
    }
    if (loraTensors.length) notes.push(`run with: llama-cli -m ${run.out}/model.gguf --lora ${run.out}/lora.gguf`);
    return {
      target: ggufTarget.id,
      path: run.out,
      files: files.map((f) => `${run.output.destination}/${f}`),
      layers: layerRecords(plan),
      tensors: modelTensors.length + loraTensors.length,
      notes,
    };
  } finally {
    await source.close();
  }
}
