/**
 * The byte layout of one result-store entry (docs/result-store.md): a JSON header holding the value
 * with every typed array replaced by a reference into a binary section, then the arrays' raw
 * little-endian bytes, then a SHA-256 of everything before it. Spectra and curves are most of an
 * analysis; as JSON numbers they would take three times the bytes and lose nothing only by luck.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';

export const ENTRY_MAGIC = 'QLRESULT';
export const ENTRY_VERSION = 1;
const HEAD = 16; // magic (8) + version (u32) + header length (u32)
const DIGEST = 32;

const ARRAY_TYPES = {
  f64: Float64Array,
  f32: Float32Array,
  i32: Int32Array,
  u32: Uint32Array,
  i16: Int16Array,
  u16: Uint16Array,
  i8: Int8Array,
  u8: Uint8Array,
} as const;
type ArrayTag = keyof typeof ARRAY_TYPES;
type AnyTypedArray = InstanceType<(typeof ARRAY_TYPES)[ArrayTag]>;

function tagOf(v: unknown): ArrayTag | null {
  for (const [tag, ctor] of Object.entries(ARRAY_TYPES) as [ArrayTag, (typeof ARRAY_TYPES)[ArrayTag]][]) {
    if (v instanceof ctor) return tag;
  }
  return null;
}

interface ArrayRef {
  type: ArrayTag;
  /** Byte offset from the start of the binary section (a multiple of 8). */
  offset: number;
  length: number;
}

export interface EntryHeader<M> {
  /** What the entry answers; checked on read so that a file in the wrong place is not believed. */
  key: string;
  meta: M;
  value: unknown;
  arrays: ArrayRef[];
}

/** Why an entry could not be read: reported as a warning, and the entry is recomputed. */
export class CorruptEntry extends Error {}

if (endianness() !== 'LE') {
  // The binary section is the arrays' memory as is; a big-endian host would read it byte-swapped.
  throw new Error('the Quant Lens result store needs a little-endian host');
}

/**
 * Plain JSON keeps everything an analysis holds except typed arrays and non-finite numbers, which
 * get marker objects. Anything else that JSON would silently change (a Map, a class instance, a
 * function, undefined in an array) is refused, so a new field in a result fails loudly in the tests
 * instead of coming back different from the store.
 */
function encodeValue(v: unknown, arrays: AnyTypedArray[], path: string): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return Object.is(v, -0) ? { $n: '-0' } : v;
    return { $n: String(v) };
  }
  if (typeof v !== 'object') throw new TypeError(`cannot store ${typeof v} at ${path}`);
  if (ArrayBuffer.isView(v)) {
    if (!tagOf(v)) throw new TypeError(`cannot store ${v.constructor.name} at ${path}`);
    arrays.push(v as AnyTypedArray);
    return { $a: arrays.length - 1 };
  }
  if (Array.isArray(v)) {
    return v.map((x, i) => {
      if (x === undefined) throw new TypeError(`cannot store undefined at ${path}[${i}]`);
      return encodeValue(x, arrays, `${path}[${i}]`);
    });
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`cannot store a ${v.constructor?.name ?? 'class instance'} at ${path}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('$')) throw new TypeError(`cannot store the key "${k}" at ${path}`);
    if (x === undefined) continue;
    out[k] = encodeValue(x, arrays, `${path}.${k}`);
  }
  return out;
}

function decodeValue(v: unknown, arrays: AnyTypedArray[]): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => decodeValue(x, arrays));
  const o = v as Record<string, unknown>;
  if ('$a' in o) {
    const a = arrays[o.$a as number];
    if (!a) throw new CorruptEntry(`array reference ${String(o.$a)} out of range`);
    return a;
  }
  if ('$n' in o) {
    const n = o.$n === '-0' ? -0 : Number(o.$n);
    if (typeof o.$n !== 'string' || (Number.isNaN(n) && o.$n !== 'NaN'))
      throw new CorruptEntry(`bad number ${String(o.$n)}`);
    return n;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = decodeValue(x, arrays);
  return out;
}

const align8 = (n: number) => (n + 7) & ~7;

export function encodeEntry<M>(key: string, meta: M, value: unknown): Buffer {
  const arrays: AnyTypedArray[] = [];
  const encoded = encodeValue(value, arrays, 'value');
  const refs: ArrayRef[] = [];
  let offset = 0;
  for (const a of arrays) {
    refs.push({ type: tagOf(a)!, offset, length: a.length });
    offset = align8(offset + a.byteLength);
  }
  const header: EntryHeader<M> = { key, meta, value: encoded, arrays: refs };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const dataStart = align8(HEAD + json.length);
  const total = dataStart + offset + DIGEST;
  const buf = Buffer.alloc(total);
  buf.write(ENTRY_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(ENTRY_VERSION, 8);
  buf.writeUInt32LE(json.length, 12);
  json.copy(buf, HEAD);
  arrays.forEach((a, i) => {
    buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), dataStart + refs[i]!.offset);
  });
  createHash('sha256')
    .update(buf.subarray(0, total - DIGEST))
    .digest()
    .copy(buf, total - DIGEST);
  return buf;
}

/** Decodes an entry, checking its checksum, layout and key; throws CorruptEntry on any mismatch. */
export function decodeEntry<M>(buf: Buffer, expectedKey: string): { meta: M; value: unknown } {
  if (buf.length < HEAD + DIGEST) throw new CorruptEntry(`truncated (${buf.length} bytes)`);
  if (buf.toString('latin1', 0, 8) !== ENTRY_MAGIC) throw new CorruptEntry('not a result-store entry');
  const version = buf.readUInt32LE(8);
  if (version !== ENTRY_VERSION) throw new CorruptEntry(`entry version ${version}, this build reads ${ENTRY_VERSION}`);
  const digest = createHash('sha256')
    .update(buf.subarray(0, buf.length - DIGEST))
    .digest();
  if (!digest.equals(buf.subarray(buf.length - DIGEST))) throw new CorruptEntry('checksum mismatch');
  const jsonLength = buf.readUInt32LE(12);
  const dataStart = align8(HEAD + jsonLength);
  const dataEnd = buf.length - DIGEST;
  if (dataStart > dataEnd) throw new CorruptEntry('header runs past the end');
  let header: EntryHeader<M>;
  try {
    header = JSON.parse(buf.toString('utf8', HEAD, HEAD + jsonLength)) as EntryHeader<M>;
  } catch (e) {
    throw new CorruptEntry(`unreadable header: ${(e as Error).message}`);
  }
  if (header.key !== expectedKey) throw new CorruptEntry(`holds ${String(header.key)}, not ${expectedKey}`);
  if (!Array.isArray(header.arrays)) throw new CorruptEntry('no array table');
  const arrays = header.arrays.map((r) => {
    const ctor = ARRAY_TYPES[r.type];
    if (!ctor || !Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length < 0)
      throw new CorruptEntry('bad array reference');
    const start = dataStart + r.offset;
    const bytes = r.length * ctor.BYTES_PER_ELEMENT;
    if (start + bytes > dataEnd) throw new CorruptEntry('array runs past the end');
    // Copied out: the file's buffer is not aligned for the element type, and callers own the result.
    const a = new ctor(r.length);
    new Uint8Array(a.buffer).set(buf.subarray(start, start + bytes));
    return a;
  });
  return { meta: header.meta, value: decodeValue(header.value, arrays) };
}
