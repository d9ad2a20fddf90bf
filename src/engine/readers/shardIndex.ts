/**
 * Hugging Face shard indexes (model.safetensors.index.json, pytorch_model.bin.index.json):
 * {"metadata": {...}, "weight_map": {"tensor.name": "model-00001-of-00003.safetensors", ...}}.
 * Every shard name is resolved inside the index's folder; one that escapes it is refused.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QuantLensError } from '../errors';
import { resolveInside } from './pathSafety';

/** Indexes of the largest public models are a few MB; this leaves room and stops a runaway file. */
const MAX_INDEX_BYTES = 64 << 20;

export interface ShardIndex {
  metadata: Record<string, string>;
  /** tensor name → absolute shard path */
  weightMap: Map<string, string>;
  /** The shards in order of first mention, with the tensors the index puts in each. */
  shards: { path: string; names: string[] }[];
}

export async function readJsonFile(path: string, maxBytes: number, what: string): Promise<unknown> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new QuantLensError('not-found', 'is not a regular file', path);
    size = s.size;
  } catch (e) {
    if (e instanceof QuantLensError) throw e;
    throw new QuantLensError('not-found', `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, path);
  }
  if (size > maxBytes)
    throw new QuantLensError('too-large', `${what} is ${size} bytes, over the ${maxBytes}-byte limit`, path);
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new QuantLensError('malformed', `${what} is not valid JSON (${(e as Error).message})`, path);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function readShardIndex(indexPath: string): Promise<ShardIndex> {
  const json = await readJsonFile(indexPath, MAX_INDEX_BYTES, 'shard index');
  if (!isObject(json)) throw new QuantLensError('malformed', 'shard index is not a JSON object', indexPath);
  const map = json.weight_map;
  if (!isObject(map)) throw new QuantLensError('malformed', 'shard index has no "weight_map" object', indexPath);
  const metadata: Record<string, string> = {};
  if (isObject(json.metadata)) {
    for (const [k, v] of Object.entries(json.metadata))
      metadata[`index.${k}`] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  const folder = dirname(indexPath);
  const resolved = new Map<string, string>();
  const weightMap = new Map<string, string>();
  const shards = new Map<string, string[]>();
  for (const [name, value] of Object.entries(map)) {
    if (typeof value !== 'string') {
      throw new QuantLensError('malformed', `weight_map["${name}"] is not a file name`, indexPath);
    }
    let path = resolved.get(value);
    if (path === undefined) {
      path = resolveInside(folder, value, indexPath, 'shard');
      resolved.set(value, path);
    }
    weightMap.set(name, path);
    let names = shards.get(path);
    if (!names) shards.set(path, (names = []));
    names.push(name);
  }
  if (shards.size === 0) throw new QuantLensError('malformed', 'shard index lists no tensors', indexPath);
  return { metadata, weightMap, shards: [...shards].map(([path, names]) => ({ path, names })) };
}
