/**
 * GGUF header (versions 2 and 3): magic "GGUF", version, tensor count, key/value metadata, tensor
 * infos, then the tensor data at the next multiple of general.alignment. Every count and length
 * in the file is checked against the bytes left before it is used, so a header claiming 2^64
 * tensors or a 1 TB string fails at once with a clear message.
 */
import { QuantLensError } from '../../errors';
import type { RandomAccessFile } from '../fileAccess';
import { WindowedFile } from '../fileAccess';
import { GGML_TYPES, type GgmlType } from './ggmlTypes';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/** gguf_type */
const T = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
const TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];
const FIXED_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Metadata values; arrays keep their length and only a short preview. */
export type GgufValue = number | bigint | boolean | string | { arrayOf: string; length: number; preview: GgufValue[] };

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the innermost, contiguous dimension. */
  dims: number[];
  typeId: number;
  type: GgmlType | null;
  /** Absolute offset of the data in the file. */
  offset: number;
  /** Bytes of data; 0 when the type is unknown and the size cannot be told. */
  byteLength: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  /**
   * Where each key's value lies in the file (its type id and payload), so that an export can copy
   * values whole: `metadata` keeps only a preview of long arrays such as a tokenizer's.
   */
  rawValues: Map<string, { offset: number; length: number }>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataStart: number;
}

const MAX_KEY_BYTES = 1 << 16;
/** Longer string values are kept as their first part: enough to show, not a memory hazard. */
const MAX_KEPT_STRING = 1 << 16;
const ARRAY_PREVIEW = 8;
const MAX_DIMS = 4; // GGML_MAX_DIMS

class Cursor {
  pos = 0;
  private readonly dec = new TextDecoder('utf-8');

  constructor(private readonly w: WindowedFile) {}

  get left(): number {
    return this.w.size - this.pos;
  }

  fail(why: string): never {
    throw new QuantLensError('malformed', `GGUF: ${why} (at byte ${this.pos})`, this.w.path);
  }

  private take(n: number, what: string): DataView {
    if (n > this.left) this.fail(`truncated: ${what} needs ${n} bytes, ${this.left} left`);
    const b = this.w.bytes(this.pos, n, what);
    this.pos += n;
    return new DataView(b.buffer, b.byteOffset, n);
  }

  u32(what: string): number {
    return this.take(4, what).getUint32(0, true);
  }

  /** A u64 that must count or locate bytes in this file: anything not a safe integer is refused. */
  u64(what: string): number {
    const v = this.take(8, what).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, beyond any file`);
    return Number(v);
  }

  /** A u64 count of items each at least `minBytes` long, checked against the bytes left. */
  count(what: string, minBytes: number): number {
    const v = this.take(8, what).getBigUint64(0, true);
    if (v * BigInt(minBytes) > BigInt(this.left)) {
      throw new QuantLensError(
        'malformed',
        `GGUF: ${what} is ${v} but only ${this.left} bytes are left after it: truncated or corrupt (at byte ${this.pos})`,
        this.w.path,
      );
    }
    return Number(v);
  }

  /** A string, of which the first `keep` bytes are kept; longer than `max` is refused outright. */
  string(what: string, keep: number, max = Infinity): string {
    const n = this.u64(`${what} length`);
    if (n > max) this.fail(`${what} of ${n} bytes`);
    if (n > this.left) this.fail(`truncated: ${what} of ${n} bytes, ${this.left} left`);
    const kept = Math.min(n, keep);
    const text = this.dec.decode(this.w.bytes(this.pos, kept, what));
    this.pos += n;
    return kept < n ? `${text}… (${n} bytes)` : text;
  }

  value(type: number, what: string, depth: number): GgufValue {
    switch (type) {
      case T.UINT8:
        return this.take(1, what).getUint8(0);
      case T.INT8:
        return this.take(1, what).getInt8(0);
      case T.UINT16:
        return this.take(2, what).getUint16(0, true);
      case T.INT16:
        return this.take(2, what).getInt16(0, true);
      case T.UINT32:
        return this.take(4, what).getUint32(0, true);
      case T.INT32:
        return this.take(4, what).getInt32(0, true);
      case T.FLOAT32:
        return this.take(4, what).getFloat32(0, true);
      case T.BOOL:
        return this.take(1, what).getUint8(0) !== 0;
      case T.STRING:
        return this.string(what, MAX_KEPT_STRING);
      case T.UINT64:
        return this.take(8, what).getBigUint64(0, true);
      case T.INT64:
        return this.take(8, what).getBigInt64(0, true);
      case T.FLOAT64:
        return this.take(8, what).getFloat64(0, true);
      case T.ARRAY: {
        if (depth >= 4) this.fail(`${what}: arrays nested too deep`);
        const itemType = this.u32(`${what} item type`);
        const fixed = FIXED_SIZE[itemType];
        const min = fixed ?? (itemType === T.STRING ? 8 : itemType === T.ARRAY ? 12 : 0);
        if (min === 0) this.fail(`${what}: unknown array item type ${itemType}`);
        const length = this.count(`${what} length`, min);
        const preview: GgufValue[] = [];
        if (fixed !== undefined) {
          const n = Math.min(length, ARRAY_PREVIEW);
          for (let i = 0; i < n; i++) preview.push(this.value(itemType, what, depth + 1));
          this.pos += (length - n) * fixed; // skipped without reading: count() checked they are there
        } else {
          // Strings and nested arrays have to be walked to find where the array ends.
          for (let i = 0; i < length; i++) {
            const v = this.value(itemType, what, depth + 1);
            if (i < ARRAY_PREVIEW) preview.push(v);
          }
        }
        return { arrayOf: TYPE_NAMES[itemType] ?? String(itemType), length, preview };
      }
      default:
        return this.fail(`${what} has unknown value type ${type}`);
    }
  }
}

export function readGgufHeader(file: RandomAccessFile): GgufHeader {
  const c = new Cursor(new WindowedFile(file));
  if (file.size < 24) c.fail(`truncated: ${file.size} bytes, too short for a GGUF header`);
  if (c.u32('magic') !== GGUF_MAGIC) throw new QuantLensError('malformed', 'not a GGUF file (bad magic)', file.path);
  const version = c.u32('version');
  if ((version & 0xffff) === 0 && version >>> 16 !== 0) {
    throw new QuantLensError('unsupported', 'big-endian GGUF files are not supported', file.path);
  }
  if (version === 1) {
    throw new QuantLensError(
      'unsupported',
      'GGUF version 1 is not supported (re-convert with a current llama.cpp)',
      file.path,
    );
  }
  if (version !== 2 && version !== 3) {
    throw new QuantLensError('unsupported', `GGUF version ${version} is not supported (2 and 3 are)`, file.path);
  }
  const tensorCount = c.count('tensor count', 8 + 4 + 8 + 4 + 8);
  const kvCount = c.count('metadata count', 8 + 4 + 1);

  const metadata = new Map<string, GgufValue>();
  const rawValues = new Map<string, { offset: number; length: number }>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string('metadata key', MAX_KEY_BYTES, MAX_KEY_BYTES);
    if (metadata.has(key)) c.fail(`duplicate metadata key "${key}"`);
    const start = c.pos;
    const type = c.u32(`type of "${key}"`);
    metadata.set(key, c.value(type, `"${key}"`, 0));
    rawValues.set(key, { offset: start, length: c.pos - start });
  }

  const alignValue = metadata.get('general.alignment');
  const alignment = alignValue === undefined ? 32 : alignValue;
  if (
    typeof alignment !== 'number' ||
    !Number.isInteger(alignment) ||
    alignment <= 0 ||
    alignment > 1 << 20 ||
    (alignment & (alignment - 1)) !== 0
  ) {
    throw new QuantLensError('malformed', `general.alignment ${String(alignValue)} is not a power of two`, file.path);
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string('tensor name', MAX_KEY_BYTES, MAX_KEY_BYTES);
    if (names.has(name)) c.fail(`duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = c.u32(`rank of "${name}"`);
    if (nDims > MAX_DIMS) c.fail(`tensor "${name}" has ${nDims} dims (at most ${MAX_DIMS})`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`dim ${d} of "${name}"`));
    const typeId = c.u32(`type of "${name}"`);
    const offset = c.u64(`offset of "${name}"`);
    tensors.push({ name, dims, typeId, type: GGML_TYPES[typeId] ?? null, offset, byteLength: 0 });
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  for (const t of tensors) validateTensor(t, dataStart, alignment, file);
  checkOverlaps(tensors, file.path);
  return { version, metadata, rawValues, tensors, alignment, dataStart };
}

function validateTensor(t: GgufTensorInfo, dataStart: number, alignment: number, file: RandomAccessFile): void {
  const bad = (why: string) => new QuantLensError('malformed', `GGUF tensor "${t.name}": ${why}`, file.path);
  if (t.offset % alignment !== 0) throw bad(`offset ${t.offset} is not a multiple of the alignment ${alignment}`);
  let count = 1;
  for (const d of t.dims) count *= d;
  if (!Number.isSafeInteger(count))
    throw new QuantLensError('too-large', `GGUF tensor "${t.name}": dims [${t.dims.join(', ')}] are absurd`, file.path);
  const abs = dataStart + t.offset;
  t.offset = abs;
  if (!t.type) return; // unknown type: size unknown, listed but refused for analysis
  if ((t.dims[0] ?? 1) % t.type.blockElements !== 0) {
    throw bad(`first dim ${t.dims[0]} is not a multiple of the ${t.type.name} block size ${t.type.blockElements}`);
  }
  t.byteLength = (count / t.type.blockElements) * t.type.blockBytes;
  if (abs + t.byteLength > file.size) {
    throw bad(`data bytes ${abs}…${abs + t.byteLength} run past the end of the ${file.size}-byte file (truncated?)`);
  }
}

function checkOverlaps(tensors: GgufTensorInfo[], path: string): void {
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new QuantLensError('malformed', `GGUF tensor "${cur.name}" overlaps "${prev.name}"`, path);
    }
  }
}

export function formatGgufValue(v: GgufValue): string {
  if (typeof v === 'object') {
    const items = v.preview.map(formatGgufValue).join(', ');
    return `[${v.length} × ${v.arrayOf}${v.length ? `: ${items}${v.length > v.preview.length ? ', …' : ''}` : ''}]`;
  }
  return String(v);
}
