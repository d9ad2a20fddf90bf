/**
 * What a model takes and gives, read from its graph: a causal language model (token ids in,
 * logits out, with the extra inputs Hugging Face exports carry) or an image model (one float
 * NCHW input). Builds onnxruntime feeds for a batch of either.
 */
import { QuantLensError } from '../errors';
import { OnnxType } from '../onnx/builder';
import type { OnnxModel, OnnxValueInfo } from '../onnx/model';
import { ort, type OrtTensor } from '../evaluation/session';

export interface LmExtraInput {
  name: string;
  role: 'attention_mask' | 'position_ids' | 'past';
  elemType: number;
  dims: (number | string | null)[] | null;
}

/** What every model states about its input: a batch dimension fixed by the graph, if any. */
export interface FixedShape {
  /** The input the batch is fed through (for messages). */
  batchInput: string;
  /** The batch dimension when the graph fixes it (an export traced at batch 1), else null. */
  fixedBatch: number | null;
  /** Language models: a sequence length the graph fixes, else null. */
  fixedSeqLen: number | null;
  /** The model file (for messages). */
  path: string;
}

export type ModelIO = FixedShape &
  (
    | {
        kind: 'lm';
        ids: string;
        idsType: 'int64' | 'int32';
        logits: string;
        /** Logits width when the graph states it. */
        vocab: number | null;
        extras: LmExtraInput[];
        output: string;
      }
    | {
        kind: 'image';
        input: string;
        channels: number;
        height: number | null;
        width: number | null;
        output: string;
      }
  );

function fixed(d: number | string | null | undefined): number | null {
  return typeof d === 'number' && d > 0 ? d : null;
}

const INT_TYPES = new Set<number>([OnnxType.INT64, OnnxType.INT32]);

function realInputs(model: OnnxModel): OnnxValueInfo[] {
  // IR < 4 lists initializers among the inputs too; they are not things to feed.
  const init = new Set(model.graph.initializers.map((i) => i.tensor.name));
  return model.graph.inputs.filter((i) => !init.has(i.name));
}

export function describeModelIO(model: OnnxModel): ModelIO {
  const inputs = realInputs(model);
  const outputs = model.graph.outputs;
  if (outputs.length === 0) throw new QuantLensError('malformed', 'the graph has no outputs', model.path);
  const ids =
    inputs.find((i) => i.name === 'input_ids') ??
    inputs.find((i) => i.elemType !== null && INT_TYPES.has(i.elemType) && i.dims?.length === 2);
  if (ids) {
    const logits = outputs.find((o) => o.name === 'logits') ?? outputs[0]!;
    const last = logits.dims?.[logits.dims.length - 1];
    const extras: LmExtraInput[] = [];
    for (const i of inputs) {
      if (i === ids) continue;
      const role = /attention_mask/.test(i.name)
        ? 'attention_mask'
        : /position_ids/.test(i.name)
          ? 'position_ids'
          : /past/.test(i.name)
            ? 'past'
            : null;
      if (!role) {
        throw new QuantLensError(
          'unsupported',
          `language-model input "${i.name}" is not one Quant Lens can fill (input_ids, attention_mask, position_ids, past_key_values.*)`,
          model.path,
        );
      }
      extras.push({ name: i.name, role, elemType: i.elemType ?? OnnxType.FLOAT, dims: i.dims });
    }
    return {
      kind: 'lm',
      batchInput: ids.name,
      fixedBatch: fixed(ids.dims?.[0]),
      fixedSeqLen: fixed(ids.dims?.[1]),
      path: model.path,
      ids: ids.name,
      idsType: ids.elemType === OnnxType.INT32 ? 'int32' : 'int64',
      logits: logits.name,
      vocab: typeof last === 'number' ? last : null,
      extras,
      output: logits.name,
    };
  }
  const image = inputs.filter((i) => i.elemType === OnnxType.FLOAT && i.dims?.length === 4);
  if (image.length === 1 && inputs.length === 1) {
    const [, c, h, w] = image[0]!.dims!;
    if (typeof c !== 'number') {
      throw new QuantLensError('unsupported', `image input "${image[0]!.name}" has no fixed channel count`, model.path);
    }
    return {
      kind: 'image',
      batchInput: image[0]!.name,
      fixedBatch: fixed(image[0]!.dims![0]),
      fixedSeqLen: null,
      path: model.path,
      input: image[0]!.name,
      channels: c,
      height: typeof h === 'number' ? h : null,
      width: typeof w === 'number' ? w : null,
      output: outputs[0]!.name,
    };
  }
  throw new QuantLensError(
    'unsupported',
    `inputs [${inputs.map((i) => i.name).join(', ')}] are neither token ids nor one NCHW image`,
    model.path,
  );
}

/** Feeds for a batch of equal-length token windows. */
export function lmFeeds(io: Extract<ModelIO, { kind: 'lm' }>, windows: Int32Array[]): Record<string, OrtTensor> {
  const O = ort();
  const n = windows.length;
  const t = windows[0]!.length;
  const ints = (f: (b: number, j: number) => number, type: 'int64' | 'int32') => {
    if (type === 'int32') {
      const a = new Int32Array(n * t);
      for (let b = 0; b < n; b++) for (let j = 0; j < t; j++) a[b * t + j] = f(b, j);
      return new O.Tensor('int32', a, [n, t]);
    }
    const a = new BigInt64Array(n * t);
    for (let b = 0; b < n; b++) for (let j = 0; j < t; j++) a[b * t + j] = BigInt(f(b, j));
    return new O.Tensor('int64', a, [n, t]);
  };
  const feeds: Record<string, OrtTensor> = { [io.ids]: ints((b, j) => windows[b]![j]!, io.idsType) };
  for (const e of io.extras) {
    const type = e.elemType === OnnxType.INT32 ? 'int32' : 'int64';
    if (e.role === 'attention_mask') feeds[e.name] = ints(() => 1, type);
    else if (e.role === 'position_ids') feeds[e.name] = ints((_, j) => j, type);
    else {
      // An empty KV cache: [batch, heads, 0, head_dim] with the static sizes the graph states.
      const dims = (e.dims ?? []).map((d, i) => (i === 0 ? n : typeof d === 'number' ? d : 0));
      if (dims.length < 3 || dims.slice(1).filter((d) => d === 0).length !== 1) {
        throw new QuantLensError('unsupported', `cannot shape an empty cache for input "${e.name}"`);
      }
      feeds[e.name] = new O.Tensor('float32', new Float32Array(0), dims);
    }
  }
  return feeds;
}
