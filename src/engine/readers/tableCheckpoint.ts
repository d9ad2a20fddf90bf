/**
 * The Checkpoint every reader returns: a table of tensors, each with a source that decodes it on
 * demand, and the linear layers discovery found among them. Formats differ only in how they fill
 * the table.
 */
import { basename } from 'node:path';
import { QuantLensError, throwIfCancelled } from '../errors';
import type {
  Checkpoint,
  CheckpointFile,
  CheckpointFormat,
  LinearLayer,
  ReadWeightOptions,
  TensorInfo,
  WeightMatrix,
} from './checkpoint';
import { addNonFinite } from './dtypes';
import { transpose, transposeRowsInto } from './layout';
import type { TensorSource, ValuesVisitor } from './tensorSource';

/** Values per block when transposing a stored [in, out] weight (16 MB of float32). */
const TRANSPOSE_BLOCK = 4 << 20;

/** A listed tensor and, when it can be decoded, where its values come from. */
export interface StoredTensor {
  info: TensorInfo;
  source: TensorSource | null;
}

export interface TableCheckpointInit {
  format: CheckpointFormat;
  path: string;
  files: CheckpointFile[];
  metadata: Record<string, string>;
  architecture: string | null;
  family: string | null;
  tensors: StoredTensor[];
  linearLayers: LinearLayer[];
  warnings?: string[];
  /** Releases file handles. */
  close: () => Promise<void>;
}

export class TableCheckpoint implements Checkpoint {
  readonly format: CheckpointFormat;
  readonly path: string;
  readonly files: CheckpointFile[];
  readonly metadata: Record<string, string>;
  readonly architecture: string | null;
  readonly family: string | null;
  readonly tensors: TensorInfo[];
  readonly linearLayers: LinearLayer[];
  readonly warnings: string[];
  private readonly byName = new Map<string, StoredTensor>();
  private readonly layerByName = new Map<string, LinearLayer>();
  private readonly closer: () => Promise<void>;
  private closed = false;

  constructor(init: TableCheckpointInit) {
    this.format = init.format;
    this.path = init.path;
    this.files = init.files;
    this.metadata = init.metadata;
    this.architecture = init.architecture;
    this.family = init.family;
    this.tensors = init.tensors.map((t) => t.info);
    this.linearLayers = init.linearLayers;
    this.warnings = init.warnings ?? [];
    this.closer = init.close;
    for (const t of init.tensors) this.byName.set(t.info.name, t);
    for (const l of init.linearLayers) this.layerByName.set(l.name, l);
  }

  private stored(name: string): StoredTensor {
    const t = this.byName.get(name);
    if (!t) throw new QuantLensError('bad-argument', `no tensor named "${name}" in ${basename(this.path)}`, this.path);
    return t;
  }

  private sourceOf(t: StoredTensor): TensorSource {
    if (t.source === null) {
      const why = t.info.decodable === true ? 'it cannot be decoded' : t.info.decodable.reason;
      throw new QuantLensError('unsupported', `tensor "${t.info.name}" (${t.info.dtype}): ${why}`, t.info.file);
    }
    return t.source;
  }

  async readTensor(name: string, signal?: AbortSignal): Promise<Float32Array> {
    throwIfCancelled(signal);
    const t = this.stored(name);
    const source = this.sourceOf(t);
    return source.readElements(0, source.count, signal);
  }

  async readWeight(name: string, signal?: AbortSignal, opts: ReadWeightOptions = {}): Promise<WeightMatrix> {
    throwIfCancelled(signal);
    const layer = this.layerByName.get(name);
    if (!layer)
      throw new QuantLensError('bad-argument', `"${name}" is not a linear layer of this checkpoint`, this.path);
    const source = this.sourceOf(this.stored(layer.tensor ?? layer.name));
    const [out, inDim] = layer.shape;
    const n = out * inDim;
    // A layer with its own `tensor` is one expert's slice of a stacked [experts, out, in] tensor.
    const sliced = layer.tensor !== undefined && layer.expert !== undefined;
    const start = sliced ? layer.expert! * n : 0;
    if (sliced ? start + n > source.count : source.count !== n) {
      throw new QuantLensError(
        'malformed',
        `layer "${name}" should have ${out}×${inDim} values but its tensor has ${source.count}`,
        layer.file,
      );
    }
    let data: Float32Array;
    const nonFinite = { nan: 0, inf: 0 };
    const counting = opts.countNonFinite !== false;
    const count = counting ? (values: Float32Array) => addNonFinite(values, nonFinite) : undefined;
    // Rows are reported as the landed prefix of the result grows (parts land out of order).
    const rowsDone = opts.onRows ? landedRows(inDim, opts.onRows) : null;
    const countAndReport: ValuesVisitor | undefined =
      count || rowsDone
        ? (values, at, result) => {
            count?.(values);
            rowsDone?.(values, at, result);
          }
        : undefined;
    // Counted as the values land (see TensorSource.readElements); a transposed layer is counted
    // in its stored blocks, the same values.
    const into = opts.into && opts.into.length >= n ? opts.into.subarray(0, n) : undefined;
    if (!layer.storedTransposed) data = await source.readElements(start, n, signal, countAndReport, into);
    else if (source.partial) {
      // Stored [in, out]: transpose a block of rows at a time, so the read holds one full copy.
      data = into ?? new Float32Array(n);
      const rowsPerBlock = Math.max(1, Math.floor(TRANSPOSE_BLOCK / out));
      for (let r = 0; r < inDim; r += rowsPerBlock) {
        const rows = Math.min(rowsPerBlock, inDim - r);
        const block = await source.readElements(start + r * out, rows * out, signal, count);
        transposeRowsInto(block, rows, out, data, inDim, r);
      }
    } else data = transpose(await source.readElements(start, n, signal, count), inDim, out);
    throwIfCancelled(signal);
    return { data, out, in: inDim, ...(counting ? { nonFinite } : {}) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closer();
  }
}

/**
 * A visitor that calls `onRows(result, rows)` whenever the contiguous prefix of landed values
 * completes more rows of `cols` values.
 */
export function landedRows(cols: number, onRows: (data: Float32Array, rows: number) => void): ValuesVisitor {
  let prefix = 0;
  let reported = 0;
  const pending = new Map<number, number>();
  return (values, at, result) => {
    if (at !== prefix) {
      pending.set(at, values.length);
      return;
    }
    prefix += values.length;
    for (let next = pending.get(prefix); next !== undefined; next = pending.get(prefix)) {
      pending.delete(prefix);
      prefix += next;
    }
    const rows = Math.floor(prefix / cols);
    if (rows > reported) {
      reported = rows;
      onRows(result, rows);
    }
  };
}
