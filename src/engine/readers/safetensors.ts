/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the byte buffer.
 * data_offsets are relative to the buffer and end-exclusive. The header is validated as strictly
 * as the reference implementation does (no overlaps, no holes, sizes that match shape × dtype),
 * because a checkpoint that breaks these rules is damaged and its numbers cannot be trusted.
 */
import { QuantLensError } from '../errors';
import { ELEMENT_BITS, decodableReason, isSafetensorsDtype, type ElementType } from './dtypes';
import type { ByteRangeReader, RandomAccessFile } from './fileAccess';
import { BlockSource, elementCodec } from './tensorSource';
import { elementCount, type TensorInfo } from './checkpoint';

/** The reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry extends TensorInfo {
  elementType: ElementType;
  /** Absolute byte offset of the tensor in the file. */
  offset: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Size of the byte buffer after the header. */
  bufferSize: number;
}

export async function readSafetensorsHeader(file: RandomAccessFile): Promise<SafetensorsHeader> {
  const path = file.path;
  if (file.size < 8)
    throw new QuantLensError('malformed', `truncated: ${file.size} bytes, too short for a safetensors header`, path);
  const lenBytes = await file.read(0, 8, 'header length');
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new QuantLensError('too-large', `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, path);
  }
  const headerLen = Number(n);
  if (8 + headerLen > file.size) {
    throw new QuantLensError(
      'malformed',
      `truncated: header length ${headerLen} runs past the end of the ${file.size}-byte file`,
      path,
    );
  }
  const raw = await file.read(8, headerLen, 'JSON header');
  if (raw.length === 0 || raw[0] !== 0x7b)
    throw new QuantLensError('malformed', 'header is not a JSON object (must start with "{")', path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new QuantLensError('malformed', 'header is not valid UTF-8', path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QuantLensError('malformed', `header is not valid JSON (${(e as Error).message})`, path);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new QuantLensError('malformed', 'header is not a JSON object', path);
  }
  const duplicate = findDuplicateTopLevelKey(text);
  if (duplicate !== undefined)
    throw new QuantLensError('malformed', `duplicate tensor name "${duplicate}" in header`, path);

  const dataStart = 8 + headerLen;
  const bufferSize = file.size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new QuantLensError('malformed', '__metadata__ must be an object of strings', path);
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new QuantLensError('malformed', `__metadata__["${k}"] is not a string`, path);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, value, path, dataStart, bufferSize));
  }
  checkCoverage(entries, dataStart, bufferSize, path);
  return { entries, metadata, bufferSize };
}

function parseEntry(
  name: string,
  value: unknown,
  path: string,
  dataStart: number,
  bufferSize: number,
): SafetensorsEntry {
  const bad = (why: string) => new QuantLensError('malformed', `tensor "${name}": ${why}`, path);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('entry is not an object');
  const e = value as Record<string, unknown>;
  if (typeof e.dtype !== 'string') throw bad('missing dtype');
  if (!isSafetensorsDtype(e.dtype))
    throw new QuantLensError('unsupported', `tensor "${name}": unknown dtype "${e.dtype}"`, path);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw bad('shape must be a list of non-negative integers');
  }
  const offsets = e.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    throw bad('data_offsets must be two non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end > bufferSize)
    throw bad(`data_offsets [${begin}, ${end}] run past the ${bufferSize}-byte data buffer (file truncated?)`);
  const shape = e.shape as number[];
  const count = elementCount(shape);
  const bits = count * ELEMENT_BITS[e.dtype];
  const expected = Math.ceil(bits / 8);
  if (!Number.isSafeInteger(count) || expected !== end - begin) {
    throw bad(`shape [${shape.join(', ')}] of ${e.dtype} needs ${expected} bytes but data_offsets span ${end - begin}`);
  }
  return {
    name,
    dtype: e.dtype,
    elementType: e.dtype,
    shape,
    file: path,
    byteLength: end - begin,
    offset: dataStart + begin,
    decodable: decodableReason(e.dtype),
  } satisfies SafetensorsEntry;
}

function checkCoverage(entries: SafetensorsEntry[], dataStart: number, bufferSize: number, path: string): void {
  const sorted = entries
    .filter((e) => e.byteLength > 0)
    .map((e) => ({ name: e.name, begin: e.offset - dataStart, end: e.offset - dataStart + e.byteLength }))
    .sort((a, b) => a.begin - b.begin);
  let cursor = 0;
  for (const r of sorted) {
    if (r.begin < cursor)
      throw new QuantLensError('malformed', `tensor "${r.name}" overlaps the tensor before it`, path);
    if (r.begin > cursor)
      throw new QuantLensError('malformed', `bytes ${cursor}…${r.begin} of the data buffer belong to no tensor`, path);
    cursor = r.end;
  }
  if (cursor !== bufferSize) {
    throw new QuantLensError(
      'malformed',
      `the data buffer has ${bufferSize - cursor} trailing bytes that belong to no tensor`,
      path,
    );
  }
}

/**
 * JSON.parse keeps the last of duplicate keys silently; the format forbids duplicates. This scans
 * the header's top-level object keys without building another tree.
 */
export function findDuplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
    i++;
  }
  return undefined;
}

/** Decodes one tensor of a safetensors file to float32 (a chunk of raw bytes at a time). */
export async function readSafetensorsTensor(
  file: ByteRangeReader,
  entry: SafetensorsEntry,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const reason = entry.decodable;
  if (reason !== true) throw new QuantLensError('unsupported', `tensor "${entry.name}": ${reason.reason}`, entry.file);
  const count = elementCount(entry.shape);
  return new BlockSource(
    file,
    entry.offset,
    elementCodec(entry.elementType),
    count,
    `tensor "${entry.name}"`,
  ).readElements(0, count, signal);
}
