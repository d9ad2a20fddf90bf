/**
 * What a stored analysis is keyed on (docs/result-store.md): the layer's weight as the engine reads
 * it (a hash of its float32 values, so a copy of the checkpoint elsewhere — a cluster's scratch
 * space, another format — finds the same results), the layer's calibration statistics (a hash of
 * what the engine reads for it), the settings, the layer name and the analysis version.
 *
 * Hashing a weight means reading it. A second, machine-local level avoids that: the identity of the
 * files a layer comes from (path, device, inode, size, mtime, ctime, and a hash of the first and
 * last 64 KiB as a cheap guard) together with the layer's description maps to the content hash.
 * Any change to a file changes its identity; the weights are then hashed again, and only layers
 * whose values really changed are recomputed.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import type { LayerCalibration } from '../methods/layerAnalysis';

/**
 * Bumped whenever analyzeLayer's numbers change for the same inputs (a different decomposition, a
 * fixed metric), so that results of the older code are not shown as today's.
 */
export const ANALYSIS_VERSION = 2; // 2: the progressive analyzeLayer (float32 Gram where it holds, new randomized SVD)

const GUARD_BYTES = 64 * 1024;

export interface FileIdentity {
  path: string;
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  /** SHA-256 of the first and last 64 KiB. */
  guard: string;
}

/** JSON with sorted keys and no undefined members: the same object always hashes the same. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  const keys = Object.keys(v)
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

export function sha256Hex(...parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

const known = new Map<string, { statKey: string; identity: FileIdentity }>();

/** The identity of one file; the guard bytes are read again only when the stat changed. */
export async function fileIdentity(path: string): Promise<FileIdentity> {
  const s = await stat(path, { bigint: true });
  const statKey = [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':');
  const cached = known.get(path);
  if (cached && cached.statKey === statKey) return cached.identity;
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const size = Number(s.size);
    const head = Buffer.alloc(Math.min(GUARD_BYTES, size));
    await fh.read(head, 0, head.length, 0);
    h.update(head);
    const tailStart = Math.max(head.length, size - GUARD_BYTES);
    const tail = Buffer.alloc(size - tailStart);
    if (tail.length) await fh.read(tail, 0, tail.length, tailStart);
    h.update(tail);
  } finally {
    await fh.close();
  }
  const identity: FileIdentity = {
    path,
    dev: String(s.dev),
    ino: String(s.ino),
    size: String(s.size),
    mtimeNs: String(s.mtimeNs),
    ctimeNs: String(s.ctimeNs),
    guard: h.digest('hex'),
  };
  known.set(path, { statKey, identity });
  return identity;
}

/** True when none of the files changed since their identities were taken. */
export async function unchangedSince(ids: FileIdentity[]): Promise<boolean> {
  for (const id of ids) {
    const s = await stat(id.path, { bigint: true }).catch(() => null);
    if (!s || String(s.ino) !== id.ino || String(s.size) !== id.size) return false;
    if (String(s.mtimeNs) !== id.mtimeNs || String(s.ctimeNs) !== id.ctimeNs || String(s.dev) !== id.dev) return false;
  }
  return true;
}

/** Key of the identity record that maps files + a description to a content hash. */
export function identityKey(kind: 'weight' | 'calibration', files: FileIdentity[], description: unknown): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return sha256Hex(canonicalJson({ kind, version: ANALYSIS_VERSION, files: sorted, description }));
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The weight's values as the engine analyses them: float32, [out, in]. */
export function weightContentHash(data: Float32Array, out: number, inFeatures: number): string {
  const h = weightContentHasher(out, inFeatures);
  h.rows(data, out);
  return h.digest();
}

/**
 * weightContentHash taken row by row as the rows become available (before anything changes them):
 * `rows(data, r)` hashes rows up to r not hashed yet.
 */
export function weightContentHasher(
  out: number,
  inFeatures: number,
): {
  rows(data: Float32Array, upTo: number): void;
  digest(): string;
} {
  const h = createHash('sha256');
  h.update(`weight f32 ${out}x${inFeatures}\n`);
  let done = 0;
  return {
    rows(data, upTo) {
      if (upTo <= done) return;
      h.update(bytesOf(data.subarray(done * inFeatures, upTo * inFeatures)));
      done = upTo;
    },
    digest() {
      if (done !== out) throw new Error(`weight hash: ${done} of ${out} rows hashed`);
      return h.digest('hex');
    },
  };
}

/** Every statistic the engine reads for a layer; '' parts keep absent and empty apart. */
export function calibrationContentHash(c: LayerCalibration): string {
  const h = createHash('sha256');
  h.update(`calibration tokens=${c.tokens ?? 'none'}\n`);
  for (const [name, a] of [
    ['meanAbs', c.meanAbs],
    ['rms', c.rms],
    ['gram', c.gram],
  ] as const) {
    h.update(a ? `${name} ${a.constructor.name} ${a.length}\n` : `${name} none\n`);
    if (a) h.update(bytesOf(a));
  }
  return h.digest('hex');
}

export interface ResultKeyInput {
  analysisVersion: number;
  layer: string;
  shape: [number, number];
  weight: string;
  /** Content hash of the layer's calibration; null when the analysis ran without one. */
  calibration: string | null;
  /** The settings as the analysis received them (canonical JSON drops absent members). */
  settings: unknown;
}

export function resultKey(input: Omit<ResultKeyInput, 'analysisVersion'>): { key: string; input: ResultKeyInput } {
  const full: ResultKeyInput = { analysisVersion: ANALYSIS_VERSION, ...input };
  return { key: sha256Hex(canonicalJson(full)), input: full };
}
