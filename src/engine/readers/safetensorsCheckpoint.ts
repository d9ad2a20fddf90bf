/**
 * safetensors checkpoints: one .safetensors file, or a sharded checkpoint whose
 * *.safetensors.index.json maps each tensor to its shard. Only headers are read on open.
 */
import { basename, dirname } from 'node:path';
import { QuantLensError } from '../errors';
import { elementCount, type Checkpoint, type CheckpointReader } from './checkpoint';
import { discoverLinearLayers } from './discovery';
import { RandomAccessFile } from './fileAccess';
import { configMetadata, readHfConfig } from './hfConfig';
import { readShardIndex } from './shardIndex';
import { readSafetensorsHeader, type SafetensorsEntry } from './safetensors';
import { TableCheckpoint, type StoredTensor } from './tableCheckpoint';
import { BlockSource, elementCodec } from './tensorSource';

function stored(file: RandomAccessFile, e: SafetensorsEntry): StoredTensor {
  const count = elementCount(e.shape);
  const source =
    e.decodable === true
      ? new BlockSource(file, e.offset, elementCodec(e.elementType), count, `tensor "${e.name}"`)
      : null;
  const { elementType: _t, ...info } = e;
  return { info, source };
}

async function closeAll(files: RandomAccessFile[]): Promise<void> {
  await Promise.allSettled(files.map((f) => f.close()));
}

async function build(
  path: string,
  files: RandomAccessFile[],
  tensors: StoredTensor[],
  metadata: Record<string, string>,
  warnings: string[],
): Promise<Checkpoint> {
  const config = await readHfConfig(dirname(path));
  const architecture = config?.architecture ?? config?.modelType ?? null;
  const { family, layers } = discoverLinearLayers(
    tensors.map((t) => t.info),
    { architecture, config },
  );
  return new TableCheckpoint({
    format: 'safetensors',
    path,
    files: files.map((f) => ({ path: f.path, size: f.size })),
    metadata: { ...metadata, ...configMetadata(config) },
    architecture,
    family,
    tensors,
    linearLayers: layers,
    warnings,
    close: () => closeAll(files),
  });
}

/** One .safetensors file. */
export async function openSafetensorsFile(path: string): Promise<Checkpoint> {
  const file = await RandomAccessFile.open(path);
  try {
    const header = await readSafetensorsHeader(file);
    return await build(
      path,
      [file],
      header.entries.map((e) => stored(file, e)),
      header.metadata,
      [],
    );
  } catch (e) {
    await file.close();
    throw e;
  }
}

/** A sharded checkpoint, opened through its *.safetensors.index.json. */
export async function openSafetensorsIndex(indexPath: string): Promise<Checkpoint> {
  const index = await readShardIndex(indexPath);
  const files: RandomAccessFile[] = [];
  try {
    const tensors: StoredTensor[] = [];
    const seen = new Map<string, string>();
    const metadata: Record<string, string> = { ...index.metadata };
    const warnings: string[] = [];
    for (const shard of index.shards) {
      const file = await RandomAccessFile.open(shard.path);
      files.push(file);
      const header = await readSafetensorsHeader(file);
      for (const [k, v] of Object.entries(header.metadata)) metadata[`${basename(shard.path)}:${k}`] = v;
      const inShard = new Set<string>();
      for (const e of header.entries) {
        const other = seen.get(e.name);
        if (other !== undefined) {
          throw new QuantLensError(
            'malformed',
            `tensor "${e.name}" is in two shards, ${basename(other)} and ${basename(shard.path)}`,
            indexPath,
          );
        }
        seen.set(e.name, shard.path);
        inShard.add(e.name);
        const mapped = index.weightMap.get(e.name);
        if (mapped === undefined)
          warnings.push(`${basename(shard.path)} holds "${e.name}", which the index does not list`);
        else if (mapped !== shard.path) {
          throw new QuantLensError(
            'malformed',
            `the index puts "${e.name}" in ${basename(mapped)} but it is in ${basename(shard.path)}`,
            indexPath,
          );
        }
        tensors.push(stored(file, e));
      }
      for (const name of shard.names) {
        if (!inShard.has(name)) {
          throw new QuantLensError(
            'malformed',
            `the index puts "${name}" in ${basename(shard.path)} but that shard has no such tensor`,
            indexPath,
          );
        }
      }
    }
    return await build(indexPath, files, tensors, metadata, warnings);
  } catch (e) {
    await closeAll(files);
    throw e;
  }
}

export const safetensorsIndexReader: CheckpointReader = {
  id: 'safetensors-index',
  format: 'safetensors',
  label: 'safetensors shard index',
  fileNames: ['*.safetensors.index.json'],
  editor: 'option',
  inFolder: { preferred: 'model.safetensors.index.json', any: ['*.safetensors.index.json'], what: 'safetensors index' },
  sniffJson: (o) => {
    const files = typeof o.weight_map === 'object' && o.weight_map !== null ? Object.values(o.weight_map) : [];
    return files.length > 0 && files.every((f) => typeof f === 'string' && f.endsWith('.safetensors'));
  },
  open: openSafetensorsIndex,
};

export const safetensorsReader: CheckpointReader = {
  id: 'safetensors',
  format: 'safetensors',
  label: 'safetensors',
  fileNames: ['*.safetensors'],
  editor: 'default',
  inFolder: { preferred: 'model.safetensors', any: ['*.safetensors'], what: '.safetensors' },
  // A little-endian u64 header length below 2^32, then '{' (Netron's test).
  sniff: (b) => b.length >= 9 && b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] === 0 && b[8] === 0x7b,
  open: openSafetensorsFile,
};
