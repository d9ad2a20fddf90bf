/** A single .safetensors file as a Checkpoint. */
import { basename, dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { QuantLensError } from '../errors';
import type { Checkpoint, LinearLayer } from './checkpoint';
import { discoverLinearLayers } from './discovery';
import { RandomAccessFile } from './fileAccess';
import { readSafetensorsHeader, readSafetensorsTensor, type SafetensorsEntry } from './safetensors';
import { transpose } from './layout';

export async function readHfConfig(folder: string): Promise<Record<string, unknown> | null> {
  try {
    const text = await readFile(join(folder, 'config.json'), 'utf8');
    const json: unknown = JSON.parse(text);
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function architectureFromConfig(config: Record<string, unknown> | null): string | null {
  if (!config) return null;
  const archs = config.architectures;
  if (Array.isArray(archs) && typeof archs[0] === 'string') return archs[0];
  return typeof config.model_type === 'string' ? config.model_type : null;
}

export class SafetensorsCheckpoint implements Checkpoint {
  readonly format = 'safetensors' as const;
  private constructor(
    readonly path: string,
    private readonly file: RandomAccessFile,
    private readonly byName: Map<string, SafetensorsEntry>,
    readonly metadata: Record<string, string>,
    readonly architecture: string | null,
    readonly linearLayers: LinearLayer[],
  ) {}

  static async open(path: string): Promise<SafetensorsCheckpoint> {
    const file = await RandomAccessFile.open(path);
    try {
      const header = await readSafetensorsHeader(file);
      const architecture = architectureFromConfig(await readHfConfig(dirname(path)));
      const byName = new Map(header.entries.map((e) => [e.name, e]));
      const layers = discoverLinearLayers(header.entries, { architecture });
      return new SafetensorsCheckpoint(path, file, byName, header.metadata, architecture, layers);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  get files() {
    return [{ path: this.path, size: this.file.size }];
  }

  get tensors() {
    return [...this.byName.values()];
  }

  async readTensor(name: string): Promise<Float32Array> {
    const entry = this.byName.get(name);
    if (!entry)
      throw new QuantLensError('bad-argument', `no tensor named "${name}" in ${basename(this.path)}`, this.path);
    return readSafetensorsTensor(this.file, entry);
  }

  async readWeight(name: string): Promise<{ data: Float32Array; out: number; in: number }> {
    const layer = this.linearLayers.find((l) => l.name === name);
    if (!layer)
      throw new QuantLensError('bad-argument', `"${name}" is not a linear layer of this checkpoint`, this.path);
    const raw = await this.readTensor(name);
    const [out, inDim] = layer.shape;
    return { data: layer.storedTransposed ? transpose(raw, inDim, out) : raw, out, in: inDim };
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
