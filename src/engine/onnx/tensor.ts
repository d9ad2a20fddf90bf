/**
 * ONNX TensorProto as metadata: name, type, dims, and where its values are (a raw_data range in the
 * model file, typed data fields, or an external data file). Values are never read while parsing.
 */
import { statSync } from 'node:fs';
import { QuantLensError } from '../errors';
import { ProtoReader, valueRange, WIRE_LEN, type ByteRange, type ByteSource } from '../protobuf/reader';
import { byteLengthOf, decodableReason } from '../readers/dtypes';
import { resolveInside } from '../readers/pathSafety';
import { onnxElementType, onnxTypeName, typedFieldOf } from './dataTypes';

export type OnnxTensorData =
  /** raw_data: little-endian bytes at `range` of the model file. */
  | { kind: 'raw'; range: ByteRange }
  /** float_data / double_data as one packed run of fixed-width values: read like raw data. */
  | { kind: 'packed'; field: number; range: ByteRange }
  /** Values in a typed field (varints, or split over several fields): decoded by rescanning `message`. */
  | { kind: 'typed'; field: number }
  /** Bytes in another file beside the model (path already resolved inside the model's folder). */
  | { kind: 'external'; location: string; path: string; offset: number; length: number }
  /** No values (an empty tensor, or a type whose values we do not look for). */
  | { kind: 'none' };

export interface OnnxTensor {
  /** The TensorProto's own name (a Constant's tensor may leave it empty; its node output names it). */
  name: string;
  dataType: number;
  dims: number[];
  data: OnnxTensorData;
  /** The TensorProto payload in the model file (what ProtoWriter.raw can copy, inside a new key). */
  message: ByteRange;
  /** Set when the values cannot be decoded to float32, saying why. */
  undecodable?: string;
}

export interface ExternalFile {
  path: string;
  size: number;
}

/** Resolves external data locations once each, inside the model's folder, with their sizes. */
export class ExternalFiles {
  private readonly cache = new Map<string, ExternalFile>();

  constructor(
    readonly folder: string,
    readonly modelPath: string,
  ) {}

  resolve(location: string): ExternalFile {
    let f = this.cache.get(location);
    if (!f) {
      const path = resolveInside(this.folder, location, this.modelPath, 'external data file');
      const s = statSync(path);
      if (!s.isFile())
        throw new QuantLensError('not-found', `external data "${location}" is not a regular file`, this.modelPath);
      f = { path, size: s.size };
      this.cache.set(location, f);
    }
    return f;
  }
}

/** Dims beyond this many are not a tensor anyone wrote on purpose. */
const MAX_RANK = 64;

export function elementCountOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function parseTensor(r: ProtoReader, external: ExternalFiles, context: string): OnnxTensor {
  const path = r.source.path;
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: ByteRange | null = null;
  let location: 'default' | 'external' = 'default';
  const externalEntries: Record<string, string> = {};
  const typedFields = new Map<number, { count: number; first: ByteRange; wire: number }>();
  let segmented = false;
  for (let f = r.next(); f; f = r.next()) {
    switch (f.field) {
      case 1:
        r.varints(f, 'dims', dims, MAX_RANK);
        break;
      case 2:
        dataType = r.int(f, 'data_type');
        break;
      case 3:
        segmented = true;
        break;
      case 8:
        name = r.string(f, 'name');
        break;
      case 9:
        r.message(f, 'raw_data');
        raw = valueRange(f);
        break;
      case 13: {
        const e = r.message(f, `${context}.external_data`);
        let key = '';
        let value = '';
        for (let g = e.next(); g; g = e.next()) {
          if (g.field === 1) key = e.string(g, 'key');
          else if (g.field === 2) value = e.string(g, 'value', 64 << 10);
        }
        externalEntries[key] = value;
        break;
      }
      case 14:
        location = r.int(f, 'data_location') === 1 ? 'external' : 'default';
        break;
      case 4:
      case 5:
      case 7:
      case 10:
      case 11: {
        const t = typedFields.get(f.field);
        if (t) t.count++;
        else typedFields.set(f.field, { count: 1, first: valueRange(f), wire: f.wire });
        break;
      }
      default:
        break; // doc_string, string_data, metadata_props: not needed to find or read weights
    }
  }
  const label = name ? `tensor "${name}"` : context;
  const bad = (why: string) => new QuantLensError('malformed', `${label}: ${why}`, path);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`dims [${dims.join(', ')}] are not sizes`);
  const count = elementCountOf(dims);
  if (!Number.isSafeInteger(count))
    throw new QuantLensError('too-large', `${label}: dims [${dims.join(', ')}] are absurd`, path);
  const element = onnxElementType(dataType);
  const expected = element ? byteLengthOf(element, count) : null;
  const tensor: OnnxTensor = {
    name,
    dataType,
    dims,
    data: { kind: 'none' },
    message: { offset: r.start, length: r.end - r.start },
  };
  if (element === null) tensor.undecodable = `${onnxTypeName(dataType)} values are not decoded`;
  else {
    const reason = decodableReason(element);
    if (reason !== true) tensor.undecodable = reason.reason;
  }
  if (segmented) tensor.undecodable = 'segmented tensors are not supported';

  if (location === 'external') {
    const loc = externalEntries.location;
    if (loc === undefined) throw bad('external data has no "location"');
    const file = external.resolve(loc);
    const offset = externalEntries.offset === undefined ? 0 : Number(externalEntries.offset);
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw bad(`external data offset "${externalEntries.offset}" is not a byte offset`);
    const given = externalEntries.length;
    const length = given === undefined ? (expected ?? file.size - offset) : Number(given);
    if (!Number.isSafeInteger(length) || length < 0) throw bad(`external data length "${given}" is not a byte count`);
    if (offset + length > file.size) {
      throw bad(`external data bytes ${offset}…${offset + length} run past the end of ${loc} (${file.size} bytes)`);
    }
    if (expected !== null && length !== expected) {
      throw bad(
        `dims [${dims.join(', ')}] of ${onnxTypeName(dataType)} need ${expected} bytes but external data holds ${length}`,
      );
    }
    tensor.data = { kind: 'external', location: loc, path: file.path, offset, length };
  } else if (raw) {
    if (expected !== null && raw.length !== expected) {
      throw bad(
        `dims [${dims.join(', ')}] of ${onnxTypeName(dataType)} need ${expected} bytes but raw_data has ${raw.length}`,
      );
    }
    tensor.data = { kind: 'raw', range: raw };
  } else if (typedFields.size > 0) {
    const field = typedFieldOf(dataType);
    const t = field === null ? undefined : typedFields.get(field);
    if (field === null || t === undefined) {
      throw bad(`${onnxTypeName(dataType)} values sit in a typed field the type does not use`);
    }
    const width = field === 4 ? 4 : field === 10 ? 8 : 0;
    if (width > 0 && t.count === 1 && t.wire === WIRE_LEN && t.first.length === count * width) {
      tensor.data = { kind: 'packed', field, range: t.first };
    } else tensor.data = { kind: 'typed', field };
  } else if (count > 0 && tensor.undecodable === undefined) {
    throw bad(`has ${count} elements but no data`);
  }
  return tensor;
}

/** Byte length of a tensor's values as stored, when known without decoding. */
export function storedByteLength(t: OnnxTensor): number {
  switch (t.data.kind) {
    case 'raw':
    case 'packed':
      return t.data.range.length;
    case 'external':
      return t.data.length;
    case 'typed':
      return t.message.length;
    case 'none':
      return 0;
  }
}

export type { ByteSource };
