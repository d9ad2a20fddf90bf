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

/**
 * Writes the transpose of `block` (blockRows × cols, row-major; rows `rowStart…` of a larger
 * rows × cols matrix) into `dst`, the cols × rows transpose of that larger matrix. Lets a reader
 * transpose a stored [in, out] weight chunk by chunk instead of holding two full copies.
 */
export function transposeRowsInto(
  block: Float32Array,
  blockRows: number,
  cols: number,
  dst: Float32Array,
  rows: number,
  rowStart: number,
): void {
  const B = 64;
  for (let i0 = 0; i0 < blockRows; i0 += B) {
    const i1 = Math.min(blockRows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const src = i * cols;
        const col = rowStart + i;
        for (let j = j0; j < j1; j++) dst[j * rows + col] = block[src + j]!;
      }
    }
  }
}
