/**
 * Opens any supported checkpoint: a file (chosen by its name, or by its first bytes when the name
 * does not say), a shard index, or a folder holding one of them.
 */
import { readdirSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { QuantLensError } from '../errors';
import type { Checkpoint } from './checkpoint';
import { openGguf } from './ggufCheckpoint';
import { openOnnx } from './onnxCheckpoint';
import { openPytorchFile, openPytorchIndex } from './pytorchCheckpoint';
import { openSafetensorsFile, openSafetensorsIndex } from './safetensorsCheckpoint';
import { readJsonFile } from './shardIndex';
import { openTfjs } from './tfjsCheckpoint';

export type DetectedFormat =
  'safetensors' | 'safetensors-index' | 'pytorch' | 'pytorch-index' | 'onnx' | 'gguf' | 'tfjs';

const OPENERS: Record<DetectedFormat, (path: string) => Promise<Checkpoint>> = {
  safetensors: openSafetensorsFile,
  'safetensors-index': openSafetensorsIndex,
  pytorch: openPytorchFile,
  'pytorch-index': openPytorchIndex,
  onnx: openOnnx,
  gguf: openGguf,
  tfjs: openTfjs,
};

async function firstBytes(path: string, n: number): Promise<Uint8Array> {
  const h = await open(path, 'r');
  try {
    const buf = new Uint8Array(n);
    const { bytesRead } = await h.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

/** Recognises a format from the first bytes of a file. */
export function sniff(b: Uint8Array): DetectedFormat | null {
  if (b.length >= 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46) return 'gguf';
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) return 'pytorch';
  if (b.length >= 3 && b[0] === 0x80 && b[1] === 0x02 && b[2] === 0x8a) return 'pytorch'; // legacy torch.save: refused with a clear message
  // safetensors: a little-endian u64 header length below 2^32, then '{' (Netron's test).
  if (b.length >= 9 && b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] === 0 && b[8] === 0x7b) return 'safetensors';
  // ONNX: a ModelProto starts with ir_version (field 1, varint) in every exporter we know.
  if (b.length >= 2 && b[0] === 0x08 && b[1]! > 0 && b[1]! < 0x20) return 'onnx';
  return null;
}

async function detectJson(path: string): Promise<DetectedFormat> {
  const json = await readJsonFile(path, 256 << 20, 'JSON file');
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    if ('weightsManifest' in o || 'modelTopology' in o) return 'tfjs';
    const map = o.weight_map;
    if (typeof map === 'object' && map !== null) {
      const files = Object.values(map);
      if (files.length > 0 && files.every((f) => typeof f === 'string' && f.endsWith('.safetensors')))
        return 'safetensors-index';
      return 'pytorch-index';
    }
  }
  throw new QuantLensError(
    'unsupported',
    'JSON file is neither a shard index (weight_map) nor a TF.js model.json',
    path,
  );
}

export async function detectFileFormat(path: string): Promise<DetectedFormat> {
  const name = basename(path).toLowerCase();
  if (name.endsWith('.safetensors.index.json')) return 'safetensors-index';
  if (name.endsWith('.bin.index.json') || name.endsWith('.pt.index.json')) return 'pytorch-index';
  if (name.endsWith('.json')) return detectJson(path);
  if (name.endsWith('.safetensors')) return 'safetensors';
  if (name.endsWith('.gguf')) return 'gguf';
  if (name.endsWith('.onnx')) return 'onnx';
  if (/\.(bin|pt|pth|ckpt)$/.test(name)) return 'pytorch';
  const f = sniff(await firstBytes(path, 16));
  if (f) return f;
  throw new QuantLensError(
    'unsupported',
    'not a checkpoint format Quant Lens reads (safetensors, ONNX, GGUF, PyTorch, TF.js)',
    path,
  );
}

/** Which file in a folder to open, in order of preference. */
export function pickInFolder(folder: string, names: string[]): string {
  const has = (n: string) => names.includes(n);
  const ends = (s: string) => names.filter((n) => n.toLowerCase().endsWith(s)).sort();
  const one = (list: string[], what: string): string | null => {
    if (list.length === 1) return list[0]!;
    if (list.length > 1) {
      throw new QuantLensError(
        'bad-argument',
        `the folder holds ${list.length} ${what} files (${list.slice(0, 4).join(', ')}${list.length > 4 ? ', …' : ''}) and no index; open one of them`,
        folder,
      );
    }
    return null;
  };
  const choice =
    (has('model.safetensors.index.json') ? 'model.safetensors.index.json' : null) ??
    one(ends('.safetensors.index.json'), 'safetensors index') ??
    (has('model.safetensors') ? 'model.safetensors' : null) ??
    one(ends('.safetensors'), '.safetensors') ??
    (has('pytorch_model.bin.index.json') ? 'pytorch_model.bin.index.json' : null) ??
    (has('pytorch_model.bin') ? 'pytorch_model.bin' : null) ??
    one([...ends('.pt'), ...ends('.pth')], 'PyTorch') ??
    (has('model.onnx') ? 'model.onnx' : null) ??
    one(ends('.onnx'), 'ONNX') ??
    one(ends('.gguf'), 'GGUF') ??
    (has('model.json') ? 'model.json' : null);
  if (!choice) throw new QuantLensError('unsupported', 'the folder holds no checkpoint Quant Lens reads', folder);
  return join(folder, choice);
}

export async function openCheckpoint(path: string): Promise<Checkpoint> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    throw new QuantLensError('not-found', `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, path);
  }
  const file = isDir ? pickInFolder(path, readdirSync(path)) : path;
  return OPENERS[await detectFileFormat(file)](file);
}
