/**
 * A protobuf wire-format reader over byte ranges. It walks fields without decoding them: a
 * length-delimited field is returned as its position and length, so a caller can skip a 2 GB
 * raw_data blob or hand the range to a sub-reader. Nothing in the input is trusted: every length
 * is checked against the enclosing message before anything is read or allocated.
 */
import { QuantLensError } from '../errors';

/** Where the bytes come from: memory, or a file read through a window (see readers/fileAccess). */
export interface ByteSource {
  /** Named in error messages. */
  readonly path: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; may be a view that is only valid until the next call. */
  bytes(offset: number, length: number, what?: string): Uint8Array;
}

export class MemorySource implements ByteSource {
  constructor(
    private readonly data: Uint8Array,
    readonly path = '<memory>',
  ) {}

  get size(): number {
    return this.data.length;
  }

  bytes(offset: number, length: number, what = 'data'): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.data.length) {
      throw new QuantLensError('malformed', `truncated: ${what} needs bytes ${offset}…${offset + length}`, this.path);
    }
    return this.data.subarray(offset, offset + length);
  }
}

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;
export type WireType = typeof WIRE_VARINT | typeof WIRE_I64 | typeof WIRE_LEN | typeof WIRE_I32;

export interface ProtoField {
  field: number;
  wire: WireType;
  /** Offset of the field's key: [start, end) is the whole field as it sits in the source. */
  start: number;
  end: number;
  /** Offset of the value (after the key, and after the length prefix for LEN fields). */
  valueStart: number;
  /** Bytes of the value: the payload for LEN, 4 or 8 for fixed, the varint's own size for VARINT. */
  valueLength: number;
  /**
   * VARINT: the value read as a signed 64-bit integer (exact up to 2^53; callers that need an
   * exact size check Number.isSafeInteger). Other wire types: 0.
   */
  varint: number;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export function fieldRange(f: ProtoField): ByteRange {
  return { offset: f.start, length: f.end - f.start };
}

export function valueRange(f: ProtoField): ByteRange {
  return { offset: f.valueStart, length: f.valueLength };
}

const utf8 = new TextDecoder('utf-8');

/** Decodes a varint from `b` at `i`; returns [value as signed int64 Number, bytes used] or null if cut short. */
export function decodeVarint(b: Uint8Array, i: number): [number, number] | null {
  let lo = 0;
  let shift = 0;
  let n = 0;
  // Up to 7 bytes (49 bits) fit in a double exactly without BigInt.
  for (; n < 7; n++) {
    if (i + n >= b.length) return null;
    const byte = b[i + n]!;
    lo += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [lo, n + 1];
  }
  let big = BigInt(lo);
  for (; n < 10; n++) {
    if (i + n >= b.length) return null;
    const byte = b[i + n]!;
    big |= BigInt(byte & 0x7f) << BigInt(shift);
    shift += 7;
    if (byte < 0x80) return [Number(BigInt.asIntN(64, big)), n + 1];
  }
  return null;
}

export class ProtoReader {
  private pos: number;

  /** Reads the message occupying [start, end) of `source`. */
  constructor(
    readonly source: ByteSource,
    readonly start = 0,
    readonly end = source.size,
    /** Names the message in errors, e.g. 'graph.node[3]'. */
    readonly context = 'message',
  ) {
    if (start < 0 || end < start || end > source.size) {
      throw new QuantLensError(
        'malformed',
        `protobuf: ${context} spans bytes ${start}…${end} outside the file`,
        source.path,
      );
    }
    this.pos = start;
  }

  static forField(source: ByteSource, f: ProtoField, context: string): ProtoReader {
    return new ProtoReader(source, f.valueStart, f.valueStart + f.valueLength, context);
  }

  private fail(why: string): never {
    throw new QuantLensError('malformed', `protobuf: ${this.context}: ${why} at byte ${this.pos}`, this.source.path);
  }

  private varintAt(at: number): [number, number] {
    const n = Math.min(10, this.end - at);
    if (n <= 0) this.fail('message ends inside a field');
    const r = decodeVarint(this.source.bytes(at, n, this.context), 0);
    if (r === null) this.fail(n < 10 ? 'message ends inside a varint' : 'varint longer than 10 bytes');
    return r;
  }

  /** The next field, or null at the end of the message. */
  next(): ProtoField | null {
    if (this.pos >= this.end) return null;
    const start = this.pos;
    const [key, keyLen] = this.varintAt(start);
    if (key < 0 || !Number.isSafeInteger(key)) this.fail('bad field key');
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0 || field > 0x1fffffff) this.fail(`invalid field number ${field}`);
    const at = start + keyLen;
    let valueStart = at;
    let valueLength: number;
    let varint = 0;
    switch (wire) {
      case WIRE_VARINT: {
        const [v, len] = this.varintAt(at);
        varint = v;
        valueLength = len;
        break;
      }
      case WIRE_I64:
        valueLength = 8;
        break;
      case WIRE_I32:
        valueLength = 4;
        break;
      case WIRE_LEN: {
        const [len, lenLen] = this.varintAt(at);
        if (len < 0 || !Number.isSafeInteger(len)) this.fail(`field ${field} has an invalid length`);
        valueStart = at + lenLen;
        valueLength = len;
        break;
      }
      case 3:
      case 4:
        this.fail(`field ${field} uses deprecated protobuf groups`);
      // eslint-disable-next-line no-fallthrough
      default:
        this.fail(`field ${field} has invalid wire type ${wire}`);
    }
    const end = valueStart + valueLength;
    if (end > this.end) this.fail(`field ${field} (${valueLength} bytes) runs past the end of the ${this.context}`);
    this.pos = end;
    return { field, wire: wire, start, end, valueStart, valueLength, varint };
  }

  // Typed accessors for the current field. Each checks the wire type, so a field of the wrong
  // kind is reported instead of misread.

  private expect(f: ProtoField, wire: WireType, what: string): void {
    if (f.wire !== wire) {
      throw new QuantLensError(
        'malformed',
        `protobuf: ${this.context}: ${what} (field ${f.field}) has wire type ${f.wire}, expected ${wire}`,
        this.source.path,
      );
    }
  }

  int(f: ProtoField, what: string): number {
    this.expect(f, WIRE_VARINT, what);
    return f.varint;
  }

  float(f: ProtoField, what: string): number {
    this.expect(f, WIRE_I32, what);
    const b = this.source.bytes(f.valueStart, 4, what);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }

  /** A string field; longer than `maxBytes` is refused (names are short; a 1 GB "name" is an attack). */
  string(f: ProtoField, what: string, maxBytes = 1 << 20): string {
    this.expect(f, WIRE_LEN, what);
    if (f.valueLength > maxBytes) {
      throw new QuantLensError(
        'too-large',
        `protobuf: ${this.context}: ${what} is ${f.valueLength} bytes, over the ${maxBytes}-byte limit`,
        this.source.path,
      );
    }
    return utf8.decode(this.source.bytes(f.valueStart, f.valueLength, what));
  }

  /** A length-delimited field as a reader over its payload. */
  message(f: ProtoField, context: string): ProtoReader {
    this.expect(f, WIRE_LEN, context);
    return ProtoReader.forField(this.source, f, context);
  }

  /**
   * Repeated int64 values: packed (one LEN field) or one VARINT per value. Appends to `into`,
   * stopping with an error past `maxCount` so a crafted field cannot fill memory.
   */
  varints(f: ProtoField, what: string, into: number[], maxCount: number): void {
    if (f.wire === WIRE_VARINT) {
      if (into.length >= maxCount) this.tooMany(what, maxCount);
      into.push(f.varint);
      return;
    }
    this.expect(f, WIRE_LEN, what);
    const b = this.source.bytes(f.valueStart, f.valueLength, what);
    let i = 0;
    while (i < b.length) {
      const r = decodeVarint(b, i);
      if (r === null) this.fail(`${what}: packed varints end inside a value`);
      if (into.length >= maxCount) this.tooMany(what, maxCount);
      into.push(r[0]);
      i += r[1];
    }
  }

  /** Repeated float values, packed or not. */
  floats(f: ProtoField, what: string, into: number[], maxCount: number): void {
    if (f.wire === WIRE_I32) {
      if (into.length >= maxCount) this.tooMany(what, maxCount);
      into.push(this.float(f, what));
      return;
    }
    this.expect(f, WIRE_LEN, what);
    if (f.valueLength % 4 !== 0) this.fail(`${what}: packed floats of ${f.valueLength} bytes`);
    if (into.length + f.valueLength / 4 > maxCount) this.tooMany(what, maxCount);
    const b = this.source.bytes(f.valueStart, f.valueLength, what);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < b.length; i += 4) into.push(dv.getFloat32(i, true));
  }

  private tooMany(what: string, max: number): never {
    throw new QuantLensError('too-large', `protobuf: ${this.context}: more than ${max} ${what}`, this.source.path);
  }
}
