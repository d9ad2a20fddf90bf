/**
 * Reading an ONNX tensor's values as float32, wherever they are stored. raw_data, packed
 * float_data and external data are byte ranges decoded a chunk at a time; values in varint fields
 * are decoded by scanning the tensor's own message, whose size bounds the work.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { MemorySource, ProtoReader, WIRE_I64, WIRE_LEN, decodeVarint } from '../protobuf/reader';
import { decodeInto, type ElementType } from '../readers/dtypes';
import type { ByteRangeReader } from '../readers/fileAccess';
import { BlockSource, elementCodec, type TensorSource, type ValuesVisitor } from '../readers/tensorSource';
import { onnxElementType } from './dataTypes';
import { elementCountOf, type OnnxTensor } from './tensor';

/** Opens (once) the file behind an external data path. */
export type ExternalOpener = (path: string) => Promise<ByteRangeReader>;

/** A source for the tensor's values, or null when it has none we can decode. */
export function onnxTensorSource(
  t: OnnxTensor,
  model: ByteRangeReader,
  openExternal: ExternalOpener,
  label: string,
): TensorSource | null {
  const element = onnxElementType(t.dataType);
  if (element === null || t.undecodable !== undefined) return null;
  const count = elementCountOf(t.dims);
  const what = `tensor "${label}"`;
  switch (t.data.kind) {
    case 'raw':
      return new BlockSource(model, t.data.range.offset, elementCodec(element), count, what);
    case 'packed':
      return new BlockSource(
        model,
        t.data.range.offset,
        elementCodec(t.data.field === 10 ? 'F64' : 'F32'),
        count,
        what,
      );
    case 'external': {
      const { path, offset } = t.data;
      return new LazySource(
        count,
        async () => new BlockSource(await openExternal(path), offset, elementCodec(element), count, what),
      );
    }
    case 'typed':
      return new TypedFieldSource(t, model, element, count, label);
    case 'none':
      return count === 0 ? new BlockSource(model, 0, elementCodec(element), 0, what) : null;
  }
}

/** Defers opening an external data file until the tensor is first read. */
class LazySource implements TensorSource {
  /** The file behind it is read by ranges. */
  readonly partial = true;
  private inner: Promise<TensorSource> | undefined;

  constructor(
    readonly count: number,
    private readonly make: () => Promise<TensorSource>,
  ) {}

  async readElements(
    start: number,
    count: number,
    signal?: AbortSignal,
    onValues?: ValuesVisitor,
    into?: Float32Array,
  ): Promise<Float32Array> {
    this.inner ??= this.make();
    return (await this.inner).readElements(start, count, signal, onValues, into);
  }
}

/** Values in int32_data / int64_data / uint64_data / double_data, or split over several fields. */
class TypedFieldSource implements TensorSource {
  constructor(
    private readonly t: OnnxTensor,
    private readonly model: ByteRangeReader,
    private readonly element: ElementType,
    readonly count: number,
    private readonly label: string,
  ) {}

  async readElements(
    start: number,
    count: number,
    signal?: AbortSignal,
    onValues?: ValuesVisitor,
  ): Promise<Float32Array> {
    throwIfCancelled(signal);
    const all = await this.decodeAll();
    const part = start === 0 && count === all.length ? all : all.slice(start, start + count);
    onValues?.(part, 0, part);
    return part;
  }

  private async decodeAll(): Promise<Float32Array> {
    const { offset, length } = this.t.message;
    const bytes = await this.model.read(offset, length, `tensor "${this.label}"`);
    const r = new ProtoReader(new MemorySource(bytes, this.model.path), 0, bytes.length, `tensor "${this.label}"`);
    const field = this.t.data.kind === 'typed' ? this.t.data.field : 0;
    const values: number[] = [];
    const tooMany = () =>
      new QuantLensError(
        'malformed',
        `tensor "${this.label}": more values than its dims [${this.t.dims.join(', ')}] hold`,
        this.model.path,
      );
    for (let f = r.next(); f; f = r.next()) {
      if (f.field !== field) continue;
      if (field === 4) r.floats(f, 'float_data', values, this.count);
      else if (field === 10) {
        const b = bytes.subarray(f.valueStart, f.valueStart + f.valueLength);
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (f.wire === WIRE_I64) values.push(dv.getFloat64(0, true));
        else if (f.wire === WIRE_LEN && b.length % 8 === 0)
          for (let i = 0; i < b.length; i += 8) values.push(dv.getFloat64(i, true));
        else throw new QuantLensError('malformed', `tensor "${this.label}": bad double_data`, this.model.path);
      } else if (f.wire === WIRE_LEN) {
        const b = bytes.subarray(f.valueStart, f.valueStart + f.valueLength);
        for (let i = 0; i < b.length;) {
          const v = decodeVarint(b, i);
          if (v === null)
            throw new QuantLensError('malformed', `tensor "${this.label}": packed varints cut short`, this.model.path);
          values.push(v[0]);
          i += v[1];
        }
      } else r.varints(f, 'values', values, this.count);
      if (values.length > this.count) throw tooMany();
    }
    if (values.length !== this.count) {
      throw new QuantLensError(
        'malformed',
        `tensor "${this.label}": ${values.length} values for dims [${this.t.dims.join(', ')}] (${this.count} expected)`,
        this.model.path,
      );
    }
    return this.convert(values);
  }

  /** int32_data holds 16- and 8-bit float types as their bit patterns; decode those through the dtype tables. */
  private convert(values: number[]): Float32Array {
    const out = new Float32Array(values.length);
    switch (this.element) {
      case 'F16':
      case 'BF16': {
        const raw = new Uint8Array(values.length * 2);
        for (let i = 0; i < values.length; i++) {
          raw[2 * i] = values[i]! & 0xff;
          raw[2 * i + 1] = (values[i]! >> 8) & 0xff;
        }
        decodeInto(this.element, raw, out, 0, values.length);
        return out;
      }
      case 'F8_E4M3':
      case 'F8_E5M2':
      case 'F8_E4M3FNUZ':
      case 'F8_E5M2FNUZ':
        decodeInto(
          this.element,
          Uint8Array.from(values, (v) => v & 0xff),
          out,
          0,
          values.length,
        );
        return out;
      case 'BOOL':
        for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
        return out;
      default:
        out.set(values);
        return out;
    }
  }
}
