/**
 * GGUF v3 writer: the header (magic, version, counts), the key/value metadata, the tensor infos
 * (name, dims in ggml order, ggml type, offset), then each tensor's bytes at the next multiple of
 * the alignment (general.alignment, 32 by default). Sizes are known up front, so the header is
 * written first and the tensors are produced one at a time; nothing but the current tensor is
 * held in memory. Layout per ggml's docs/gguf.md.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { GGML_TYPES } from '../readers/gguf/ggmlTypes';
import type { OutputSink } from './safeOutput';

export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type ids of metadata values. */
export const GGUF_VALUE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE, 'array'>;

/** One metadata value; `raw` carries an already encoded value (type id + payload) copied from a GGUF. */
export type GgufMetadataValue =
  | { type: 'string'; value: string }
  | { type: 'bool'; value: boolean }
  | { type: 'u32' | 'i32' | 'f32' | 'u8' | 'i8' | 'u16' | 'i16' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: bigint }
  | { type: 'array'; itemType: 'string'; values: readonly string[] }
  | { type: 'array'; itemType: 'i32' | 'u32' | 'f32'; values: readonly number[] }
  | { type: 'raw'; bytes: Uint8Array };

export interface GgufTensorToWrite {
  name: string;
  /** ggml order: dims[0] is the contiguous (innermost) dimension. */
  dims: readonly number[];
  /** ggml_type id. */
  typeId: number;
  /** Produces exactly byteLength(dims, typeId) bytes. */
  bytes: () => Promise<Uint8Array>;
}

const utf8 = new TextEncoder();

/** Bytes a tensor of `dims` takes in ggml type `typeId`; the innermost dim must split into blocks. */
export function ggufTensorBytes(dims: readonly number[], typeId: number, name = 'tensor'): number {
  const t = GGML_TYPES[typeId];
  if (!t) throw new Error(`ggml type ${typeId} is not known`);
  const count = dims.reduce((a, b) => a * b, 1);
  if ((dims[0] ?? 1) % t.blockElements !== 0) {
    throw new Error(`${name}: rows of ${dims[0]} do not split into ${t.name}'s blocks of ${t.blockElements}`);
  }
  return (count / t.blockElements) * t.blockBytes;
}

class ByteBuilder {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  string(s: string): void {
    const bytes = utf8.encode(s);
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufScalarType, v: number | bigint | boolean): void {
    const size = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 0 }[
      type
    ];
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    switch (type) {
      case 'u8':
        dv.setUint8(0, Number(v));
        break;
      case 'i8':
        dv.setInt8(0, Number(v));
        break;
      case 'bool':
        dv.setUint8(0, v ? 1 : 0);
        break;
      case 'u16':
        dv.setUint16(0, Number(v), true);
        break;
      case 'i16':
        dv.setInt16(0, Number(v), true);
        break;
      case 'u32':
        dv.setUint32(0, Number(v), true);
        break;
      case 'i32':
        dv.setInt32(0, Number(v), true);
        break;
      case 'f32':
        dv.setFloat32(0, Number(v), true);
        break;
      case 'u64':
        dv.setBigUint64(0, BigInt(v), true);
        break;
      case 'i64':
        dv.setBigInt64(0, BigInt(v), true);
        break;
      case 'f64':
        dv.setFloat64(0, Number(v), true);
        break;
      case 'string':
        throw new Error('strings are not scalars');
    }
    this.push(b);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function encodeValue(b: ByteBuilder, v: GgufMetadataValue): void {
  switch (v.type) {
    case 'raw':
      b.push(v.bytes);
      return;
    case 'string':
      b.u32(GGUF_VALUE.string);
      b.string(v.value);
      return;
    case 'array':
      b.u32(GGUF_VALUE.array);
      b.u32(GGUF_VALUE[v.itemType]);
      b.u64(v.values.length);
      if (v.itemType === 'string') for (const s of v.values) b.string(s);
      else for (const x of v.values) b.scalar(v.itemType, x);
      return;
    default:
      b.u32(GGUF_VALUE[v.type]);
      b.scalar(v.type, v.value);
  }
}

/**
 * Writes a GGUF v3 file to `sink`: `metadata` in the order given, then the tensors in order, each
 * at an offset aligned to `general.alignment` (which must be a power of two when given).
 */
export async function writeGguf(
  sink: OutputSink,
  metadata: ReadonlyArray<readonly [string, GgufMetadataValue]>,
  tensors: readonly GgufTensorToWrite[],
  signal?: AbortSignal,
): Promise<void> {
  const keys = new Set<string>();
  for (const [k] of metadata) {
    if (keys.has(k)) throw new Error(`GGUF metadata key "${k}" given twice`);
    keys.add(k);
  }
  const alignEntry = metadata.find(([k]) => k === 'general.alignment')?.[1];
  const alignment = alignEntry && alignEntry.type === 'u32' ? alignEntry.value : GGUF_DEFAULT_ALIGNMENT;
  const h = new ByteBuilder();
  h.u32(0x46554747);
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const [k, v] of metadata) {
    h.string(k);
    encodeValue(h, v);
  }
  const sizes: number[] = [];
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF tensor "${t.name}" given twice`);
    names.add(t.name);
    const size = ggufTensorBytes(t.dims, t.typeId, t.name);
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.typeId);
    h.u64(offset);
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }
  const header = h.bytes();
  await sink.write(header);
  await sink.write(new Uint8Array(Math.ceil(header.length / alignment) * alignment - header.length));
  for (let i = 0; i < tensors.length; i++) {
    throwIfCancelled(signal);
    const t = tensors[i]!;
    const size = sizes[i]!;
    const bytes = await t.bytes();
    if (bytes.length !== size) {
      throw new QuantLensError(
        'bad-argument',
        `GGUF tensor "${t.name}" produced ${bytes.length} bytes, expected ${size}`,
      );
    }
    await sink.write(bytes);
    const pad = Math.ceil(size / alignment) * alignment - size;
    if (pad) await sink.write(new Uint8Array(pad));
  }
}
