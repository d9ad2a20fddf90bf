/**
 * A safetensors writer for tensors whose dtype is only known once their bytes are made (an export
 * that stores each W_q in the narrowest dtype holding it exactly). The header goes first in the
 * file, so room for it is reserved from an upper bound — every undecided tensor counted at F32
 * size and with the longest dtype name — the tensors are appended one at a time, and the real
 * header is written into the reserved room at the end, padded with spaces (the format allows
 * trailing whitespace in the header; the data still starts 8-byte aligned). One tensor is in
 * memory at a time.
 */
import { elementCount } from '../readers/checkpoint';
import { byteLengthOf, type ElementType } from '../readers/dtypes';
import { QuantLensError, throwIfCancelled } from '../errors';
import type { OutputSink } from './safeOutput';

export interface StreamTensor {
  name: string;
  shape: number[];
  /** The dtype when it is known up front; null when `produce` decides (then at most F32-sized). */
  dtype: ElementType | null;
  produce(): Promise<{ dtype: ElementType; bytes: Uint8Array }>;
}

export interface WrittenTensor {
  name: string;
  dtype: ElementType;
  shape: number[];
  bytes: number;
}

/** The most bytes a tensor can take in the file. */
export function boundBytes(t: Pick<StreamTensor, 'shape' | 'dtype'>): number {
  return byteLengthOf(t.dtype ?? 'F32', elementCount(t.shape));
}

function headerJson(
  tensors: { name: string; dtype: string; shape: number[]; bytes: number }[],
  metadata: Record<string, string> | undefined,
): string {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (Object.hasOwn(header, t.name)) throw new QuantLensError('bad-argument', `duplicate tensor name "${t.name}"`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
    offset += t.bytes;
  }
  return JSON.stringify(header);
}

function headerBytes(json: string, length: number): Uint8Array {
  const text = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + length).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.set(text, 8);
  return out;
}

/** Writes a complete safetensors file into `sink` (which starts empty). */
export async function writeSafetensorsStream(
  sink: OutputSink,
  tensors: StreamTensor[],
  metadata?: Record<string, string>,
  signal?: AbortSignal,
): Promise<WrittenTensor[]> {
  // Offsets only shrink when a tensor comes out smaller than its bound, and "BF16" is the longest
  // name a decided dtype can get, so the real header is never longer than this one.
  const bound = headerJson(
    tensors.map((t) => ({ name: t.name, dtype: t.dtype ?? 'BF16', shape: t.shape, bytes: boundBytes(t) })),
    metadata,
  );
  let reserved = Buffer.byteLength(bound, 'utf8');
  reserved += (8 - ((8 + reserved) % 8)) % 8;
  await sink.write(headerBytes('', reserved));
  const written: WrittenTensor[] = [];
  for (const t of tensors) {
    throwIfCancelled(signal);
    const { dtype, bytes } = await t.produce();
    if (t.dtype && dtype !== t.dtype) throw new Error(`tensor "${t.name}": produced ${dtype}, announced ${t.dtype}`);
    const expected = byteLengthOf(dtype, elementCount(t.shape));
    if (bytes.length !== expected || expected > boundBytes(t)) {
      throw new Error(`tensor "${t.name}": produced ${bytes.length} bytes of ${dtype}, expected ${expected}`);
    }
    await sink.write(bytes);
    written.push({ name: t.name, dtype, shape: t.shape, bytes: bytes.length });
  }
  const json = headerJson(written, metadata);
  if (Buffer.byteLength(json, 'utf8') > reserved) throw new Error('safetensors header outgrew its reserved room');
  await sink.writeAt(headerBytes(json, reserved), 0);
  return written;
}
