/**
 * A minimal protobuf wire-format writer. Quant Lens writes ONNX models for two reasons: the tiny
 * kernel graphs that run our GEMMs in onnxruntime, and rewritten copies of user models
 * (calibration outputs, fake-quantized weights). Both need only a handful of message types, so a
 * general protobuf library with the full onnx.proto schema would be dead weight.
 */

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(16);

  private pushVarint(value: bigint | number): void {
    let v = BigInt(value);
    if (v < 0n) v = BigInt.asUintN(64, v); // negative int64 values are written as 10-byte varints
    let i = 0;
    while (v >= 0x80n) {
      this.scratch[i++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.scratch[i++] = Number(v);
    this.chunks.push(this.scratch.slice(0, i));
  }

  private key(field: number, wire: number): void {
    this.pushVarint((field << 3) | wire);
  }

  varint(field: number, value: number | bigint): this {
    this.key(field, WIRE_VARINT);
    this.pushVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.chunks.push(b);
    return this;
  }

  double(field: number, value: number): this {
    this.key(field, WIRE_I64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.chunks.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.pushVarint(value.length);
    this.chunks.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** Appends bytes that are already a sequence of encoded fields (e.g. copied from a parsed message). */
  raw(encodedFields: Uint8Array): this {
    this.chunks.push(encodedFields);
    return this;
  }

  packedVarints(field: number, values: ArrayLike<number | bigint>): this {
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.pushVarint(values[i]!);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
