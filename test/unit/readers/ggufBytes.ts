/** Builds GGUF files byte by byte for bad-input tests; every field can be overridden. */

export interface GgufSpec {
  magic?: number;
  version?: number;
  tensorCount?: bigint;
  kvCount?: bigint;
  /** Pre-encoded key/value entries. */
  kv?: Uint8Array[];
  tensors?: { name: string; dims: bigint[]; type: number; offset: bigint }[];
  alignment?: number;
  data?: Uint8Array;
}

class Bytes {
  private parts: number[] = [];
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: bigint): this {
    for (let i = 0n; i < 8n; i++) this.parts.push(Number((v >> (8n * i)) & 0xffn));
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.u64(BigInt(b.length));
    this.parts.push(...b);
    return this;
  }
  raw(b: Uint8Array): this {
    this.parts.push(...b);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export function kvString(key: string, value: string): Uint8Array {
  return new Bytes().str(key).u32(8).str(value).finish();
}

export function kvU32(key: string, value: number): Uint8Array {
  return new Bytes().str(key).u32(4).u32(value).finish();
}

/** An array of strings whose declared length can lie. */
export function kvStringArray(key: string, values: string[], declared?: bigint): Uint8Array {
  const b = new Bytes()
    .str(key)
    .u32(9)
    .u32(8)
    .u64(declared ?? BigInt(values.length));
  for (const v of values) b.str(v);
  return b.finish();
}

export function ggufBytes(spec: GgufSpec): Uint8Array {
  const tensors = spec.tensors ?? [];
  const kv = spec.kv ?? [kvString('general.architecture', 'llama')];
  const b = new Bytes()
    .u32(spec.magic ?? 0x46554747)
    .u32(spec.version ?? 3)
    .u64(spec.tensorCount ?? BigInt(tensors.length))
    .u64(spec.kvCount ?? BigInt(kv.length));
  for (const e of kv) b.raw(e);
  for (const t of tensors) {
    b.str(t.name).u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(t.type).u64(t.offset);
  }
  const align = spec.alignment ?? 32;
  while (b.length % align) b.raw(Uint8Array.of(0));
  if (spec.data) b.raw(spec.data);
  return b.finish();
}
