/** Layout helpers for turning stored tensors into [out, in] row-major weights. */

/** Transposes a rows×cols row-major matrix, blocked so both sides stay in cache. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(rows * cols);
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const row = i * cols;
        for (let j = j0; j < j1; j++) dst[j * rows + i] = src[row + j]!;
      }
    }
  }
  return dst;
}
