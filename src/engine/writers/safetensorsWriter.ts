/**
 * Streaming safetensors writer: the header is computed from the tensor list up front, then each
 * tensor's bytes are produced and written in order, so exporting a large checkpoint never holds
 * more than one tensor in memory. The file goes through safeOutput.ts: a checked destination, a
 * temporary name, a rename when complete.
 */
import { ELEMENT_BITS, floatToHalf, type ElementType } from '../readers/dtypes';
import { elementCount } from '../readers/checkpoint';
import { QuantLensError, throwIfCancelled } from '../errors';
import { writeOutputFile, type CheckedOutput } from './safeOutput';

export interface TensorToWrite {
  name: string;
  dtype: ElementType;
  shape: number[];
  /** Produces the little-endian bytes; called once, in file order. */
  bytes: () => Promise<Uint8Array> | Uint8Array;
}

export function byteLengthOf(dtype: ElementType, shape: number[]): number {
  return Math.ceil((elementCount(shape) * ELEMENT_BITS[dtype]) / 8);
}

export function encodeHeader(tensors: Omit<TensorToWrite, 'bytes'>[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new QuantLensError('bad-argument', `duplicate tensor name "${t.name}"`);
    names.add(t.name);
    const n = byteLengthOf(t.dtype, t.shape);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  // Pad so the data buffer starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + head.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  return out;
}

export async function writeSafetensorsFile(
  out: CheckedOutput,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
  signal?: AbortSignal,
): Promise<void> {
  const header = encodeHeader(tensors, metadata);
  await writeOutputFile(
    out,
    async (sink) => {
      await sink.write(header);
      for (const t of tensors) {
        throwIfCancelled(signal);
        const bytes = await t.bytes();
        const expected = byteLengthOf(t.dtype, t.shape);
        if (bytes.length !== expected) {
          throw new Error(`tensor "${t.name}": produced ${bytes.length} bytes, expected ${expected}`);
        }
        await sink.write(bytes);
      }
    },
    signal,
  );
}

/** Little-endian bytes of a float32 array (a view, no copy, when aligned). */
export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function f64Bytes(a: Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** float32 → bfloat16 with round-to-nearest-even (as torch casts), NaN kept NaN. */
export function bf16Bytes(a: Float32Array): Uint8Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const out = new Uint8Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    const x = u[i]!;
    const h = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = (h >>> 8) & 0xff;
  }
  return out;
}

/** float32 → IEEE half with round-to-nearest-even, overflow to ±inf. */
export function f16Bytes(a: Float32Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    const h = floatToHalf(a[i]!);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}
