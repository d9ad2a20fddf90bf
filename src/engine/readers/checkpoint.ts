/**
 * The one view of a checkpoint that the rest of Quant Lens uses, whatever the file format.
 * Readers parse headers only; tensor bytes are read one tensor at a time, by offset, on demand.
 */

export type CheckpointFormat = 'safetensors' | 'onnx' | 'gguf' | 'pytorch' | 'tfjs';

export interface TensorInfo {
  name: string;
  /** The dtype as the file names it (e.g. 'BF16', 'F8_E4M3', 'Q4_K', 'float32'). */
  dtype: string;
  /** Shape in the file's own (row-major, outermost first) order. GGUF dims are reversed into this order. */
  shape: number[];
  /** Absolute path of the file holding the bytes. */
  file: string;
  /** Bytes the tensor occupies in that file. */
  byteLength: number;
  /** Whether `readTensor` can decode it to float32; if not, why not. */
  decodable: true | { reason: string };
}

/** A linear layer found in the checkpoint, always described in PyTorch nn.Linear orientation. */
export interface LinearLayer {
  /** The weight tensor's name; calibration statistics are keyed by it. */
  name: string;
  /** [out, in] after undoing the file's layout. */
  shape: [number, number];
  /** True when the file stores the weight as [in, out] (GPT-2 Conv1D, ONNX MatMul, TF.js). */
  storedTransposed: boolean;
  /** Transformer block index when the name or graph tells it, else null. */
  block: number | null;
  /** Short role label for grouping and heatmaps: 'q_proj', 'k_proj', 'fc1', 'lm_head', 'conv1x1', … */
  role: string;
  /** Whether the LQER papers quantize this kind of layer (decoder linears yes; embeddings, lm_head no). */
  quantizedByDefault: boolean;
  dtype: string;
  file: string;
}

export interface CheckpointFile {
  path: string;
  size: number;
}

export interface Checkpoint {
  readonly format: CheckpointFormat;
  /** The path the user opened: a file, a shard index or a folder. */
  readonly path: string;
  readonly files: CheckpointFile[];
  /** Free-form metadata (safetensors __metadata__, GGUF key/values, ONNX producer, …) as strings. */
  readonly metadata: Record<string, string>;
  /** Architecture name when it can be told (e.g. 'LlamaForCausalLM', 'gpt2'), else null. */
  readonly architecture: string | null;
  readonly tensors: TensorInfo[];
  readonly linearLayers: LinearLayer[];
  /** Decodes one tensor to float32 in the file's own shape order. */
  readTensor(name: string, signal?: AbortSignal): Promise<Float32Array>;
  /** Reads a linear layer's weight as float32 [out, in], transposing if the file stores [in, out]. */
  readWeight(name: string, signal?: AbortSignal): Promise<{ data: Float32Array; out: number; in: number }>;
  close(): Promise<void>;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
