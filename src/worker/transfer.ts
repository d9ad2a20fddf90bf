/**
 * Finds the ArrayBuffers inside a message so postMessage can transfer them instead of copying.
 * A typed array that is a view on part of a larger buffer is not transferred (the rest of the
 * buffer may still be in use); it is copied by structured clone as usual.
 */
export function transferablesOf(value: unknown, out: ArrayBuffer[] = [], seen = new Set<unknown>()): ArrayBuffer[] {
  if (value === null || typeof value !== 'object' || seen.has(value)) return out;
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    const buf = value.buffer;
    if (
      buf instanceof ArrayBuffer &&
      value.byteOffset === 0 &&
      value.byteLength === buf.byteLength &&
      !out.includes(buf)
    ) {
      out.push(buf);
    }
    return out;
  }
  if (Array.isArray(value)) {
    for (const v of value) transferablesOf(v, out, seen);
  } else {
    for (const v of Object.values(value)) transferablesOf(v, out, seen);
  }
  return out;
}
