/**
 * TensorFlow.js models: model.json (graph-model or layers-model) and binary weight shards. Each
 * weightsManifest group concatenates its weights, in order, across its shard files, which are cut
 * at arbitrary bytes. Weights may be affine-quantized to uint8/uint16 or stored as float16.
 * TensorFlow keeps Dense kernels [in, out] and Conv2D kernels [h, w, in, out].
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { QuantLensError } from '../errors';
import { elementCount, type Checkpoint, type CheckpointReader, type LinearLayer, type TensorInfo } from './checkpoint';
import { analyseName, compareLayers, discoverLinearLayers } from './discovery';
import { halfToFloat } from './dtypes';
import { ConcatenatedFiles, RandomAccessFile } from './fileAccess';
import { resolveInside } from './pathSafety';
import { readJsonFile } from './shardIndex';
import { TableCheckpoint, type StoredTensor } from './tableCheckpoint';
import { BlockSource, elementCodec, type BlockCodec } from './tensorSource';

const MAX_MODEL_JSON = 256 << 20;

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function affine(bytesPer: 1 | 2, scale: number, min: number): BlockCodec {
  return {
    blockElements: 1,
    blockBytes: bytesPer,
    decode: (b, out, at, n) => {
      for (let i = 0; i < n; i++)
        out[at + i] = (bytesPer === 1 ? b[i]! : b[2 * i]! | (b[2 * i + 1]! << 8)) * scale + min;
    },
  };
}

const FLOAT16: BlockCodec = {
  blockElements: 1,
  blockBytes: 2,
  decode: (b, out, at, n) => {
    for (let i = 0; i < n; i++) out[at + i] = halfToFloat(b[2 * i]! | (b[2 * i + 1]! << 8));
  },
};

/** The codec and stored size per element of a manifest weight, or why it cannot be decoded. */
function codecOf(w: ManifestWeight): { codec: BlockCodec | null; bytesPer: number | null; reason?: string } {
  const q = w.quantization;
  if (q) {
    if (q.dtype === 'float16') return { codec: FLOAT16, bytesPer: 2 };
    if (q.dtype === 'uint8' || q.dtype === 'uint16') {
      const bytesPer = q.dtype === 'uint8' ? 1 : 2;
      if (typeof q.scale !== 'number' || typeof q.min !== 'number') {
        return { codec: null, bytesPer, reason: `${q.dtype} quantization without scale and min` };
      }
      return { codec: affine(bytesPer, q.scale, q.min), bytesPer };
    }
    return { codec: null, bytesPer: null, reason: `unknown quantization dtype "${q.dtype}"` };
  }
  switch (w.dtype) {
    case 'float32':
      return { codec: elementCodec('F32'), bytesPer: 4 };
    case 'int32':
      return { codec: elementCodec('I32'), bytesPer: 4 };
    case 'bool':
      return { codec: elementCodec('BOOL'), bytesPer: 1 };
    case 'complex64':
      return { codec: null, bytesPer: 8, reason: 'complex weights are not decoded' };
    case 'string':
      return { codec: null, bytesPer: null, reason: 'string weights have no fixed size' };
    default:
      return { codec: null, bytesPer: null, reason: `unknown dtype "${w.dtype}"` };
  }
}

function parseWeight(v: unknown, path: string): ManifestWeight {
  if (!isObject(v) || typeof v.name !== 'string' || typeof v.dtype !== 'string' || !Array.isArray(v.shape)) {
    throw new QuantLensError('malformed', 'weightsManifest entry needs name, shape and dtype', path);
  }
  if (!v.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new QuantLensError('malformed', `weight "${v.name}": shape is not a list of sizes`, path);
  }
  const q = v.quantization;
  return {
    name: v.name,
    shape: v.shape as number[],
    dtype: v.dtype,
    ...(isObject(q) && typeof q.dtype === 'string'
      ? { quantization: { dtype: q.dtype, scale: q.scale as number, min: q.min as number } }
      : {}),
  };
}

interface GraphNode {
  name: string;
  op: string;
  inputs: string[];
  transposeB: boolean;
}

function graphNodes(topology: unknown): GraphNode[] {
  if (!isObject(topology) || !Array.isArray(topology.node)) return [];
  const out: GraphNode[] = [];
  for (const n of topology.node) {
    if (!isObject(n) || typeof n.name !== 'string' || typeof n.op !== 'string') continue;
    const inputs = Array.isArray(n.input) ? n.input.filter((i): i is string => typeof i === 'string') : [];
    const attr = isObject(n.attr) ? n.attr : {};
    const tb = attr.transpose_b;
    out.push({
      name: n.name,
      op: n.op,
      inputs: inputs.map((i) => i.replace(/:\d+$/, '')),
      transposeB: isObject(tb) && tb.b === true,
    });
  }
  return out;
}

/** Dense (MatMul) and 1×1 Conv2D layers whose weight is a manifest weight. */
function graphLayers(nodes: GraphNode[], infos: Map<string, TensorInfo>): LinearLayer[] {
  const layers: LinearLayer[] = [];
  const seen = new Set<string>();
  for (const n of nodes) {
    const matmul = n.op === 'MatMul' || n.op === '_FusedMatMul';
    const conv = n.op === 'Conv2D' || n.op === '_FusedConv2D';
    if ((!matmul && !conv) || n.inputs.length < 2) continue;
    const wName = n.inputs[1]!;
    const info = infos.get(wName);
    if (!info || seen.has(wName)) continue;
    const s = info.shape;
    let shape: [number, number];
    let storedTransposed: boolean;
    if (matmul && s.length === 2) {
      storedTransposed = !n.transposeB;
      shape = storedTransposed ? [s[1]!, s[0]!] : [s[0]!, s[1]!];
    } else if (conv && s.length === 4 && s[0] === 1 && s[1] === 1) {
      storedTransposed = true; // [1, 1, in, out]
      shape = [s[3]!, s[2]!];
    } else continue;
    seen.add(wName);
    const a = analyseName(n.name.replace(/\/(MatMul|Conv2D|BiasAdd)$/, ''));
    layers.push({
      name: wName,
      shape,
      storedTransposed,
      block: a.block,
      role: conv && a.role === 'linear' ? 'conv1x1' : a.role,
      group: conv && a.group === 'other' ? 'conv' : a.group,
      quantizedByDefault: a.quantizedByDefault,
      dtype: info.dtype,
      file: info.file,
    });
  }
  return layers;
}

export async function openTfjs(path: string): Promise<Checkpoint> {
  const json = await readJsonFile(path, MAX_MODEL_JSON, 'TF.js model.json');
  if (!isObject(json) || !Array.isArray(json.weightsManifest)) {
    throw new QuantLensError('malformed', 'not a TF.js model.json (no weightsManifest)', path);
  }
  const folder = dirname(path);
  const opened: RandomAccessFile[] = [];
  try {
    const tensors: StoredTensor[] = [];
    const infos = new Map<string, TensorInfo>();
    for (const [g, group] of json.weightsManifest.entries()) {
      if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
        throw new QuantLensError('malformed', `weightsManifest[${g}] needs paths and weights`, path);
      }
      const parts: RandomAccessFile[] = [];
      for (const p of group.paths) {
        if (typeof p !== 'string')
          throw new QuantLensError('malformed', `weightsManifest[${g}].paths holds a non-string`, path);
        const f = await RandomAccessFile.open(resolveInside(folder, p, path, 'weight shard'));
        opened.push(f);
        parts.push(f);
      }
      const reader = new ConcatenatedFiles(parts[0]?.path ?? path, parts);
      let offset = 0;
      let lost: string | null = null;
      for (const raw of group.weights) {
        const w = parseWeight(raw, path);
        if (infos.has(w.name)) throw new QuantLensError('malformed', `two weights are named "${w.name}"`, path);
        const count = elementCount(w.shape);
        if (!Number.isSafeInteger(count))
          throw new QuantLensError('too-large', `weight "${w.name}": shape is absurd`, path);
        const { codec, bytesPer, reason } = codecOf(w);
        const byteLength = bytesPer === null ? 0 : count * bytesPer;
        const why = lost ?? reason;
        const info: TensorInfo = {
          name: w.name,
          dtype: w.quantization ? `${w.quantization.dtype}→${w.dtype}` : w.dtype,
          shape: w.shape,
          file: reader.path,
          byteLength,
          decodable: why === undefined ? true : { reason: why },
        };
        if (why === undefined && offset + byteLength > reader.size) {
          throw new QuantLensError(
            'malformed',
            `weight "${w.name}" needs bytes ${offset}…${offset + byteLength} of group ${g} but its shards hold ${reader.size} (truncated?)`,
            path,
          );
        }
        infos.set(w.name, info);
        tensors.push({
          info,
          source:
            why === undefined && codec ? new BlockSource(reader, offset, codec, count, `weight "${w.name}"`) : null,
        });
        if (bytesPer === null) lost ??= `follows "${w.name}", whose size is unknown, in the same shard group`;
        offset += byteLength;
      }
    }
    const nodes = graphNodes(json.modelTopology);
    let layers = graphLayers(nodes, infos);
    let family: string | null = null;
    if (layers.length === 0) {
      const r = discoverLinearLayers([...infos.values()], { architecture: null, convention: 'tf' });
      layers = r.layers;
      family = r.family;
    }
    layers.sort(compareLayers);
    const metadata: Record<string, string> = {};
    for (const k of ['format', 'generatedBy', 'convertedBy'])
      if (typeof json[k] === 'string') metadata[`tfjs.${k}`] = json[k];
    return new TableCheckpoint({
      format: 'tfjs',
      path,
      files: [{ path, size: statSync(path).size }, ...opened.map((f) => ({ path: f.path, size: f.size }))],
      metadata,
      architecture: null,
      family,
      tensors,
      linearLayers: layers,
      close: async () => {
        await Promise.allSettled(opened.map((f) => f.close()));
      },
    });
  } catch (e) {
    await Promise.allSettled(opened.map((f) => f.close()));
    throw e;
  }
}

export const tfjsReader: CheckpointReader = {
  id: 'tfjs',
  format: 'tfjs',
  label: 'TF.js model.json',
  fileNames: ['model.json'],
  editor: 'option',
  inFolder: { preferred: 'model.json', what: 'TF.js' },
  sniffJson: (o) => 'weightsManifest' in o || 'modelTopology' in o,
  open: openTfjs,
};
