/** Writes safetensors files for tests (float32 / bf16 / raw), so tests can build exactly the bytes they need. */
import { writeFileSync } from 'node:fs';

export interface TestTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Raw little-endian bytes of the tensor. */
  bytes: Uint8Array;
}

export function f32Tensor(name: string, shape: number[], values: ArrayLike<number>): TestTensor {
  return { name, dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(values).buffer) };
}

export function bf16Tensor(name: string, shape: number[], values: ArrayLike<number>): TestTensor {
  const f = Float32Array.from(values);
  const u = new Uint32Array(f.buffer);
  const out = new Uint8Array(f.length * 2);
  for (let i = 0; i < f.length; i++) {
    // round to nearest even, as torch does when casting to bfloat16
    const x = u[i]!;
    const r = (x + 0x7fff + ((x >> 16) & 1)) >>> 16;
    out[2 * i] = r & 0xff;
    out[2 * i + 1] = (r >> 8) & 0xff;
  }
  return { name, dtype: 'BF16', shape, bytes: out };
}

export function safetensorsBytes(tensors: TestTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let o = 8 + head.length;
  for (const t of tensors) {
    out.set(t.bytes, o);
    o += t.bytes.length;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: TestTensor[], metadata?: Record<string, string>): void {
  writeFileSync(path, safetensorsBytes(tensors, metadata));
}

/** A safetensors file from a header given as text (valid or not) and a data buffer, for bad-input tests. */
export function rawSafetensorsBytes(
  header: string,
  buffer: Uint8Array = new Uint8Array(0),
  headerLength?: bigint,
): Uint8Array {
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + head.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(head.length), true);
  out.set(head, 8);
  out.set(buffer, 8 + head.length);
  return out;
}
