/**
 * Tiles over a row-major matrix, as the official `block` / `F.unfold` blocking lays them out:
 * tiles start at (0, 0), step by the tile size, and the last tile in each direction may be
 * ragged. The official code zero-pads ragged tiles; a zero never changes a max |x|, so the kernels
 * here simply look at the real elements only.
 *
 * Kernels walk one band of `tileRows` rows at a time: first a statistics pass over the band
 * (contiguous reads whatever the tile shape), then the quantize pass. Because every statistic of a
 * band is read before any element of it is written, `out` may be the input array itself.
 */
import { QuantLensError } from '../errors';
import type { Tile } from './formatFamily';

export interface TileGrid {
  readonly rows: number;
  readonly cols: number;
  /** Tile size after resolving -1 and oversize entries. */
  readonly tileRows: number;
  readonly tileCols: number;
  readonly tilesDown: number;
  readonly tilesAcross: number;
}

/** -1, or a size at least the dimension, means the whole dimension (official `_infer_block_shape`). */
function resolveTileSize(size: number, dim: number): number {
  if (size === -1 || size >= dim) return Math.max(dim, 1);
  if (!Number.isInteger(size) || size < 1) {
    throw new QuantLensError('bad-argument', `block size ${size} is not a positive integer or -1`);
  }
  return size;
}

export function tileGrid(rows: number, cols: number, tile: Tile): TileGrid {
  const tileRows = resolveTileSize(tile[0], rows);
  const tileCols = resolveTileSize(tile[1], cols);
  return {
    rows,
    cols,
    tileRows,
    tileCols,
    tilesDown: Math.ceil(rows / tileRows),
    tilesAcross: Math.ceil(cols / tileCols),
  };
}

/** Number of scaling blocks a rows×cols matrix needs, ragged ones included. */
export function tileCount(rows: number, cols: number, tile: Tile): number {
  const grid = tileGrid(rows, cols, tile);
  return grid.tilesDown * grid.tilesAcross;
}

/** Rejects a buffer whose length is not rows·cols. */
export function checkMatrix(data: Float32Array, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new QuantLensError('bad-argument', `matrix shape ${rows}×${cols} is not a pair of non-negative integers`);
  }
  if (data.length !== rows * cols) {
    throw new QuantLensError(
      'bad-argument',
      `matrix of ${rows}×${cols} needs ${rows * cols} values, got ${data.length}`,
    );
  }
}

/**
 * Per-tile max |x|, kept as float32 bit patterns: for non-negative floats the integer order of the
 * bits is the numeric order, and an integer max can be taken without a data-dependent branch
 * (mispredicted branches dominated the float version). A NaN has the largest pattern, so it
 * becomes its tile's max, as torch.max propagates NaN.
 */
export class TileAbsMax {
  readonly bits: Uint32Array;
  /** The same maxima as float32 values. */
  readonly values: Float32Array;
  constructor(tiles: number) {
    this.bits = new Uint32Array(tiles);
    this.values = new Float32Array(this.bits.buffer);
  }
}

/** max |x| of each tile of the band of rows [r0, r1), from the input's bits (see `bitsView`). */
export function bandAbsMax(bits: Uint32Array, grid: TileGrid, r0: number, r1: number, amax: TileAbsMax): void {
  const { cols, tileCols, tilesAcross } = grid;
  const out = amax.bits;
  out.fill(0, 0, tilesAcross);
  for (let r = r0; r < r1; r++) {
    const base = r * cols;
    for (let t = 0; t < tilesAcross; t++) {
      const c0 = base + t * tileCols;
      const c1 = Math.min(c0 + tileCols, base + cols);
      let m = out[t] as number;
      for (let i = c0; i < c1; i++) {
        // m = max(m, |x| bits): both are < 2^31, so the difference fits an int32 and its sign
        // bit selects without a branch.
        const d = ((bits[i] as number) & 0x7fffffff) - m;
        m += d & ~(d >> 31);
      }
      out[t] = m;
    }
  }
}

/** min and max of each tile of the band of rows [r0, r1). NaN is ignored. */
export function bandMinMax(
  data: Float32Array,
  grid: TileGrid,
  r0: number,
  r1: number,
  min: Float64Array,
  max: Float64Array,
): void {
  const { cols, tileCols, tilesAcross } = grid;
  min.fill(Infinity, 0, tilesAcross);
  max.fill(-Infinity, 0, tilesAcross);
  for (let r = r0; r < r1; r++) {
    const base = r * cols;
    for (let t = 0; t < tilesAcross; t++) {
      const c0 = base + t * tileCols;
      const c1 = Math.min(c0 + tileCols, base + cols);
      let lo = min[t] as number;
      let hi = max[t] as number;
      for (let i = c0; i < c1; i++) {
        const x = data[i] as number;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      min[t] = lo;
      max[t] = hi;
    }
  }
}

/** max |x| over the whole matrix (NVFP4's per-tensor scale); NaN if any element is NaN. */
export function tensorAbsMax(bits: Uint32Array): number {
  let m = 0;
  for (let i = 0; i < bits.length; i++) {
    const d = ((bits[i] as number) & 0x7fffffff) - m;
    m += d & ~(d >> 31);
  }
  const value = new Float32Array(new Uint32Array([m]).buffer);
  return value[0] as number;
}

/** A view of a Float32Array's bits, for sign bits, exponent fields and integer maxima. */
export function bitsView(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}
