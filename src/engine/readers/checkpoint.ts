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
  /** GGUF only: the dims as the file lists them (ggml order, innermost first). */
  storedDims?: number[];
  /** Absolute byte offset of the tensor's data in `file`, when it is one contiguous range. */
  offset?: number;
}

/** Which part of a transformer block a layer belongs to, for grouping in the UI. */
export type LayerGroup = 'attention' | 'mlp' | 'expert' | 'router' | 'embedding' | 'head' | 'conv' | 'other';

/** Where an ONNX linear layer sits in the graph, for calibration (extra outputs) and rewriting. */
export interface OnnxLinearSite {
  /** Name of the MatMul / Gemm / Conv node (its index when the node has no name: '#17'). */
  node: string;
  op: 'MatMul' | 'Gemm' | 'Conv';
  /** The graph value the node multiplies with the weight: add it as a graph output to calibrate. */
  activationInput: string;
  /** The node input that carries the weight (a Transpose output when the weight passes through one). */
  weightInput: string;
  /** Where the weight's bytes come from. */
  weightSource: 'initializer' | 'constant' | 'external';
  /** Gemm only: the transA attribute (the activation is transposed). */
  transA?: boolean;
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
  /** The stored tensor holding the weight when it differs from `name` (an expert slice of a stacked tensor). */
  tensor?: string;
  /** Index into the leading (expert) dimension of `tensor`. */
  expert?: number;
  group?: LayerGroup;
  /** ONNX only: the node that uses the weight. */
  onnx?: OnnxLinearSite;
}

/** A linear layer's weight as the engine wants it: float32, row-major [out, in]. */
export interface WeightMatrix {
  data: Float32Array;
  out: number;
  in: number;
  /** NaN and ±Inf entries found while decoding (allowed in a checkpoint, reported per layer). */
  nonFinite?: { nan: number; inf: number };
}

export interface ReadWeightOptions {
  onRows?: (data: Float32Array, rows: number) => void;
  /**
   * Storage for the values, reused from an earlier layer (see weightBuffers.ts): used when it holds
   * out·in values and the reader decodes in place, so the result may or may not be a view of it.
   */
  into?: Float32Array;
  /**
   * Count NaN and ±Inf entries into WeightMatrix.nonFinite (default true). An analysis counts
   * them in its own pass over W and saves the reader's (a pass over every value as it lands).
   */
  countNonFinite?: boolean;
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
  /** The model family the linear-layer discovery recognised ('llama', 'gpt2', …), if any. */
  readonly family?: string | null;
  /** Things worth telling the user that do not stop the checkpoint from opening. */
  readonly warnings?: string[];
  readonly tensors: TensorInfo[];
  readonly linearLayers: LinearLayer[];
  /** Decodes one tensor to float32 in the file's own shape order. */
  readTensor(name: string, signal?: AbortSignal): Promise<Float32Array>;
  /**
   * Reads a linear layer's weight as float32 [out, in], transposing if the file stores [in, out].
   * `onRows(data, rows)` is told, as the read goes on, that rows [0, rows) of the array being
   * filled hold their values (where the layout lets rows complete before the whole has been read;
   * it may not be called at all). It may change those rows.
   */
  readWeight(name: string, signal?: AbortSignal, opts?: ReadWeightOptions): Promise<WeightMatrix>;
  close(): Promise<void>;
}

/** Product of the dims; not a safe integer when the shape is absurd, which callers check. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * One checkpoint reader: which files it opens and how. Each reader file exports its entry;
 * readers/registry.ts lists them, and everything that needs to know the checkpoint files (open.ts,
 * the extension's file pickers, folder index and custom editors, the manifest test, the CLI's help)
 * reads that list. File-name globs use `*` only and are matched case-insensitively.
 */
export interface CheckpointReader {
  /** Unique key, e.g. 'safetensors-index'. */
  readonly id: string;
  /** What the opened Checkpoint's `format` is. */
  readonly format: CheckpointFormat;
  /** For help text and messages: "safetensors shard index". */
  readonly label: string;
  /**
   * The file names the UI offers it for (explorer menu, file pickers, folder index, custom editor
   * selectors). A `*.ext` glob also decides the reader by name; an exact name (`model.json`) and
   * any `.json` file are decided by content (`sniffJson`).
   */
  readonly fileNames: readonly string[];
  /** Globs it also claims by name without the UI offering them (rare or ambiguous: `*.ckpt`). */
  readonly alsoNamed?: readonly string[];
  /**
   * Globs whose presence in a workspace activates the extension, when narrower than `fileNames`
   * (`pytorch_model*.bin` rather than every `*.bin`).
   */
  readonly activation?: readonly string[];
  /** The overview is the default editor of its files, or offered under "Open With…". */
  readonly editor: 'default' | 'option';
  /**
   * Which file to open in a folder: `preferred` when present, else the one file matching `any`
   * (several are an error naming them as `what` files). Readers are tried in registry order.
   */
  readonly inFolder: { readonly preferred?: string; readonly any?: readonly string[]; readonly what: string };
  /** Recognises the format from a file's first 16 bytes when the name does not say. */
  sniff?(head: Uint8Array): boolean;
  /** Recognises a JSON file (shard index, TF.js manifest) from its parsed top-level object. */
  sniffJson?(json: Readonly<Record<string, unknown>>): boolean;
  open(path: string): Promise<Checkpoint>;
}
