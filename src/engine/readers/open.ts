/**
 * Opens any supported checkpoint: a file (its reader chosen by its name, its JSON content or its
 * first bytes), a shard index, or a folder holding one of them. The readers are listed in
 * registry.ts.
 */
import { readdirSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { QuantLensError } from '../errors';
import type { Checkpoint, CheckpointReader } from './checkpoint';
import { CHECKPOINT_READERS, matchesGlob, readerForName } from './registry';
import { readJsonFile } from './shardIndex';

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

/** The id of the reader that recognises these first bytes of a file, or null. */
export function sniff(b: Uint8Array): string | null {
  return CHECKPOINT_READERS.find((r) => r.sniff?.(b))?.id ?? null;
}

async function detectJson(path: string): Promise<CheckpointReader> {
  const json = await readJsonFile(path, 256 << 20, 'JSON file');
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    const reader = CHECKPOINT_READERS.find((r) => r.sniffJson?.(o));
    if (reader) return reader;
  }
  throw new QuantLensError(
    'unsupported',
    'JSON file is neither a shard index (weight_map) nor a TF.js model.json',
    path,
  );
}

/** The reader for a file: by its name, else (JSON) by its content, else by its first bytes. */
export async function detectReader(path: string): Promise<CheckpointReader> {
  const name = basename(path);
  const byName = readerForName(name);
  if (byName) return byName;
  if (name.toLowerCase().endsWith('.json')) return detectJson(path);
  const head = await firstBytes(path, 16);
  const bySniff = CHECKPOINT_READERS.find((r) => r.sniff?.(head));
  if (bySniff) return bySniff;
  throw new QuantLensError(
    'unsupported',
    `not a checkpoint format Quant Lens reads (${[...new Set(CHECKPOINT_READERS.map((r) => r.format))].join(', ')})`,
    path,
  );
}

/** Which file in a folder to open: the first reader, in registry order, that finds its file. */
export function pickInFolder(folder: string, names: string[]): string {
  for (const reader of CHECKPOINT_READERS) {
    const { preferred, any = [], what } = reader.inFolder;
    if (preferred && names.includes(preferred)) return join(folder, preferred);
    const matches = names.filter((n) => any.some((g) => matchesGlob(n, g))).sort();
    if (matches.length === 1) return join(folder, matches[0]!);
    if (matches.length > 1) {
      throw new QuantLensError(
        'bad-argument',
        `the folder holds ${matches.length} ${what} files (${matches.slice(0, 4).join(', ')}${matches.length > 4 ? ', …' : ''}) and no index; open one of them`,
        folder,
      );
    }
  }
  throw new QuantLensError('unsupported', 'the folder holds no checkpoint Quant Lens reads', folder);
}

export async function openCheckpoint(path: string): Promise<Checkpoint> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    throw new QuantLensError('not-found', `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, path);
  }
  const file = isDir ? pickInFolder(path, readdirSync(path)) : path;
  return (await detectReader(file)).open(file);
}
