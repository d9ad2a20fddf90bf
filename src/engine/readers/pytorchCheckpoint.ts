/**
 * PyTorch checkpoints written by torch.save since 1.6: a zip whose data.pkl describes the state
 * dict and whose data/<key> entries hold the storages. The pickle goes through our restricted
 * unpickler (nothing in it is executed); tensors are read in place from their storage entries
 * with their offsets and strides. Sharded checkpoints (pytorch_model.bin.index.json) are opened
 * shard by shard like safetensors ones.
 */
import { basename, dirname } from 'node:path';
import { QuantLensError, throwIfCancelled } from '../errors';
import { elementCount, type Checkpoint, type CheckpointReader, type TensorInfo } from './checkpoint';
import { discoverLinearLayers } from './discovery';
import { ELEMENT_BITS, byteLengthOf, decodableReason, decodeInto, type ElementType } from './dtypes';
import { RandomAccessFile } from './fileAccess';
import { configMetadata, readHfConfig } from './hfConfig';
import { collectTensors, TensorRef, Unpickler } from './pytorch/pickle';
import { ZipArchive, type ZipEntry } from './pytorch/zip';
import { readShardIndex } from './shardIndex';
import { TableCheckpoint, type StoredTensor } from './tableCheckpoint';
import { BlockSource, elementCodec, type TensorSource, type ValuesVisitor } from './tensorSource';

/** data.pkl of a state dict is a few bytes per tensor; a 7B model's is ~50 KB. */
const MAX_PICKLE_BYTES = 64 << 20;

const TORCH_TO_ELEMENT: Record<string, ElementType | undefined> = {
  float32: 'F32',
  float: 'F32',
  float64: 'F64',
  double: 'F64',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  uint16: 'U16',
  uint32: 'U32',
  uint64: 'U64',
  bool: 'BOOL',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  float8_e4m3fnuz: 'F8_E4M3FNUZ',
  float8_e5m2fnuz: 'F8_E5M2FNUZ',
  float8_e8m0fnu: 'F8_E8M0',
  complex64: 'C64',
};

/** The first pickle of the pre-1.6 format: PROTO 2, then LONG1 holding the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** A tensor whose strides are not row-major: the span it reaches is read and gathered. */
class StridedSource implements TensorSource {
  readonly count: number;

  constructor(
    private readonly file: RandomAccessFile,
    private readonly base: number,
    private readonly type: ElementType,
    private readonly t: TensorRef,
    private readonly reach: number,
    private readonly what: string,
  ) {
    this.count = elementCount(t.size);
  }

  async readElements(
    start: number,
    count: number,
    signal?: AbortSignal,
    onValues?: ValuesVisitor,
  ): Promise<Float32Array> {
    throwIfCancelled(signal);
    const bytesPer = ELEMENT_BITS[this.type] / 8;
    const spanElems = this.reach - this.t.storageOffset;
    const bytes = await this.file.read(this.base + this.t.storageOffset * bytesPer, spanElems * bytesPer, this.what);
    const span = new Float32Array(spanElems);
    decodeInto(this.type, bytes, span, 0, spanElems);
    const out = new Float32Array(count);
    const { size, stride } = this.t;
    const idx = new Array<number>(size.length).fill(0);
    // Start the odometer at `start`.
    let rem = start;
    for (let d = size.length - 1; d >= 0; d--) {
      idx[d] = rem % size[d]!;
      rem = Math.floor(rem / size[d]!);
    }
    for (let i = 0; i < count; i++) {
      let off = 0;
      for (let d = 0; d < size.length; d++) off += idx[d]! * stride[d]!;
      out[i] = span[off]!;
      for (let d = size.length - 1; d >= 0; d--) {
        if (++idx[d]! < size[d]!) break;
        idx[d] = 0;
      }
    }
    onValues?.(out, 0, out);
    return out;
  }
}

function isRowMajor(size: number[], stride: number[]): boolean {
  let expect = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d]! !== 1 && stride[d] !== expect) return false;
    expect *= size[d]!;
  }
  return true;
}

interface ShardContent {
  file: RandomAccessFile;
  tensors: StoredTensor[];
  metadata: Record<string, string>;
}

function findArchivePrefix(zip: ZipArchive, path: string): string {
  const prefixes = [...zip.entries.keys()]
    .filter((n) => /^[^/]+\/data\.pkl$/.test(n))
    .map((n) => n.slice(0, -'/data.pkl'.length));
  if (prefixes.length === 0) {
    throw new QuantLensError('malformed', 'zip archive has no <name>/data.pkl: not a torch.save checkpoint', path);
  }
  if (prefixes.length > 1)
    throw new QuantLensError('malformed', `zip archive holds ${prefixes.length} pickles named data.pkl`, path);
  const prefix = prefixes[0]!;
  if ([...zip.entries.keys()].some((n) => n.startsWith(`${prefix}/code/`) || n === `${prefix}/constants.pkl`)) {
    throw new QuantLensError(
      'unsupported',
      'this is a TorchScript archive, not a state dict; save model.state_dict() instead',
      path,
    );
  }
  return prefix;
}

async function readShard(path: string): Promise<ShardContent> {
  const file = await RandomAccessFile.open(path);
  try {
    const head = await file.read(0, Math.min(file.size, LEGACY_MAGIC.length), 'file start');
    if (LEGACY_MAGIC.every((b, i) => head[i] === b)) {
      throw new QuantLensError(
        'unsupported',
        'legacy (pre-1.6) torch.save format; re-save it with a current PyTorch',
        path,
      );
    }
    const zip = await ZipArchive.open(file);
    const prefix = findArchivePrefix(zip, path);
    const byteorder = zip.entries.get(`${prefix}/byteorder`);
    if (byteorder && new TextDecoder().decode(await zip.readEntry(byteorder, 16)).trim() === 'big') {
      throw new QuantLensError('unsupported', 'big-endian PyTorch checkpoints are not supported', path);
    }
    const pkl = await zip.readEntry(zip.entries.get(`${prefix}/data.pkl`)!, MAX_PICKLE_BYTES);
    const root = new Unpickler(pkl, path, `${prefix}/data.pkl`).load();
    const found = collectTensors(root);
    const offsets = new Map<ZipEntry, number>();
    const tensors: StoredTensor[] = [];
    const names = new Set<string>();
    for (const { name, tensor } of found) {
      if (names.has(name)) throw new QuantLensError('malformed', `two tensors are named "${name}"`, path);
      names.add(name);
      const entryName = `${prefix}/data/${tensor.storage.key}`;
      const entry = zip.entries.get(entryName);
      if (!entry)
        throw new QuantLensError(
          'malformed',
          `tensor "${name}": storage ${entryName} is missing from the archive`,
          path,
        );
      let offset = offsets.get(entry);
      if (offset === undefined) {
        if (entry.method !== 0) {
          throw new QuantLensError(
            'unsupported',
            `storage ${entryName} is compressed; torch.save never does that`,
            path,
          );
        }
        offset = await zip.dataOffset(entry);
        offsets.set(entry, offset);
      }
      tensors.push(describe(file, name, tensor, entry, offset));
    }
    return { file, tensors, metadata: { 'torch.archive': prefix } };
  } catch (e) {
    await file.close();
    throw e;
  }
}

function describe(file: RandomAccessFile, name: string, t: TensorRef, entry: ZipEntry, base: number): StoredTensor {
  const path = file.path;
  const bad = (why: string) => new QuantLensError('malformed', `tensor "${name}": ${why}`, path);
  const type = TORCH_TO_ELEMENT[t.dtype];
  const count = elementCount(t.size);
  if (t.size.length !== t.stride.length) throw bad(`size has ${t.size.length} dims but stride ${t.stride.length}`);
  if (t.size.some((d) => d < 0) || t.stride.some((s) => s < 0) || t.storageOffset < 0)
    throw bad('negative size, stride or offset');
  if (!Number.isSafeInteger(count))
    throw new QuantLensError('too-large', `tensor "${name}": size [${t.size.join(', ')}] is absurd`, path);
  const info: TensorInfo = {
    name,
    dtype: t.dtype,
    shape: t.size,
    file: path,
    byteLength: type ? byteLengthOf(type, count) : 0,
    decodable: type ? decodableReason(type) : { reason: `torch.${t.dtype} tensors are not decoded` },
  };
  if (!type) return { info, source: null };
  const itemBytes = ELEMENT_BITS[type] / 8;
  // Storage size: elements for typed storages, bytes for UntypedStorage.
  const storageBytes = t.storage.dtype === null ? t.storage.numel : t.storage.numel * itemBytes;
  if (storageBytes !== entry.size) {
    throw bad(`storage ${t.storage.key} should hold ${storageBytes} bytes but its entry has ${entry.size}`);
  }
  let reach = t.storageOffset;
  if (count > 0) {
    reach += 1;
    for (let d = 0; d < t.size.length; d++) reach += (t.size[d]! - 1) * t.stride[d]!;
  }
  if (reach * itemBytes > storageBytes) {
    throw bad(
      `size [${t.size.join(', ')}] with stride [${t.stride.join(', ')}] reaches past its ${storageBytes}-byte storage`,
    );
  }
  if (info.decodable !== true) return { info, source: null };
  if (isRowMajor(t.size, t.stride)) {
    info.offset = base + t.storageOffset * itemBytes;
    return { info, source: new BlockSource(file, info.offset, elementCodec(type), count, `tensor "${name}"`) };
  }
  return { info, source: new StridedSource(file, base, type, t, reach, `tensor "${name}"`) };
}

async function build(
  path: string,
  shards: ShardContent[],
  warnings: string[],
  extra: Record<string, string>,
): Promise<Checkpoint> {
  const config = await readHfConfig(dirname(path));
  const architecture = config?.architecture ?? config?.modelType ?? null;
  const tensors = shards.flatMap((s) => s.tensors);
  const { family, layers } = discoverLinearLayers(
    tensors.map((t) => t.info),
    { architecture, config },
  );
  return new TableCheckpoint({
    format: 'pytorch',
    path,
    files: shards.map((s) => ({ path: s.file.path, size: s.file.size })),
    metadata: { ...Object.assign({}, ...shards.map((s) => s.metadata)), ...extra, ...configMetadata(config) },
    architecture,
    family,
    tensors,
    linearLayers: layers,
    warnings,
    close: async () => {
      await Promise.allSettled(shards.map((s) => s.file.close()));
    },
  });
}

export async function openPytorchFile(path: string): Promise<Checkpoint> {
  const shard = await readShard(path);
  try {
    return await build(path, [shard], [], {});
  } catch (e) {
    await shard.file.close();
    throw e;
  }
}

/** A sharded checkpoint through pytorch_model.bin.index.json. */
export async function openPytorchIndex(indexPath: string): Promise<Checkpoint> {
  const index = await readShardIndex(indexPath);
  const shards: ShardContent[] = [];
  try {
    const warnings: string[] = [];
    const owner = new Map<string, string>();
    for (const s of index.shards) {
      const shard = await readShard(s.path);
      shards.push(shard);
      const have = new Set(shard.tensors.map((t) => t.info.name));
      for (const name of s.names) {
        if (!have.has(name)) {
          throw new QuantLensError(
            'malformed',
            `the index puts "${name}" in ${basename(s.path)} but that shard has no such tensor`,
            indexPath,
          );
        }
      }
      for (const name of have) {
        const other = owner.get(name);
        if (other)
          throw new QuantLensError(
            'malformed',
            `tensor "${name}" is in two shards, ${basename(other)} and ${basename(s.path)}`,
            indexPath,
          );
        owner.set(name, s.path);
        if (!index.weightMap.has(name))
          warnings.push(`${basename(s.path)} holds "${name}", which the index does not list`);
      }
    }
    return await build(indexPath, shards, warnings, index.metadata);
  } catch (e) {
    await Promise.allSettled(shards.map((s) => s.file.close()));
    throw e;
  }
}

export const pytorchIndexReader: CheckpointReader = {
  id: 'pytorch-index',
  format: 'pytorch',
  label: 'PyTorch shard index',
  fileNames: [],
  alsoNamed: ['*.bin.index.json', '*.pt.index.json'],
  editor: 'option',
  inFolder: { preferred: 'pytorch_model.bin.index.json', what: 'PyTorch index' },
  sniffJson: (o) => typeof o.weight_map === 'object' && o.weight_map !== null,
  open: openPytorchIndex,
};

export const pytorchReader: CheckpointReader = {
  id: 'pytorch',
  format: 'pytorch',
  label: 'PyTorch',
  fileNames: ['*.bin', '*.pt', '*.pth'],
  alsoNamed: ['*.ckpt'],
  // Any *.bin is too common to wake the extension for; Hugging Face names its weights this way.
  activation: ['pytorch_model*.bin', '*.pt', '*.pth'],
  editor: 'option',
  inFolder: { preferred: 'pytorch_model.bin', any: ['*.pt', '*.pth'], what: 'PyTorch' },
  // A zip archive (torch.save since 1.6), or the legacy pickle format, refused with a clear message on open.
  sniff: (b) =>
    (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) ||
    (b.length >= 3 && b[0] === 0x80 && b[1] === 0x02 && b[2] === 0x8a),
  open: openPytorchFile,
};
