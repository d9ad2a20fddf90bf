/**
 * FP8 E4M3 with one float32 scale per tile (default: per output channel, i.e. per row of W[out, in]),
 * the usual "FP8 weight, per-channel scale" deployment:
 *
 *   s = amax(tile) / 448,   x̂ = s · e4m3(x / s)   (float32 arithmetic, RNE, saturating)
 *
 * Outputs carry the input's sign bit. A tile whose scale is 0 (all zero, or amax < 448·2^−149 so
 * that the float32 scale underflows) comes out as signed zeros.
 */
import {
  blockOnlyNaming,
  isFlag,
  parseBlockOnly,
  storageBreakdown,
  type FormatFamily,
  type Tile,
} from './formatFamily';
import { MINIFLOATS, roundToMinifloat } from './minifloat';
import { TileAbsMax, bandAbsMax, bitsView, tileCount, tileGrid } from './tiling';

/** FP8 E4M3 elements with one FP32 scale per tile; the default tile is one output channel (row). */
export interface Fp8Format {
  readonly kind: 'fp8';
  readonly tile: Tile;
}

export function fakeQuantizeFp8(
  data: Float32Array,
  rows: number,
  cols: number,
  format: Fp8Format,
  out: Float32Array,
): void {
  const E4M3 = MINIFLOATS.e4m3;
  const grid = tileGrid(rows, cols, format.tile);
  const bits = bitsView(data);
  const amax = new TileAbsMax(grid.tilesAcross);
  const scale = new Float64Array(grid.tilesAcross);
  // Loaded once: per-element calls then go to a known function the JIT can inline.
  const round = roundToMinifloat;

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    bandAbsMax(bits, grid, r0, r1, amax);
    for (let t = 0; t < grid.tilesAcross; t++) {
      const blockMax = amax.values[t] as number;
      scale[t] = blockMax < Infinity ? Math.fround(blockMax / E4M3.maxNormal) : NaN;
    }
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        const s = scale[t] as number;
        if (s === 0) {
          for (let i = start; i < end; i++) out[i] = (data[i] as number) * 0;
          continue;
        }
        for (let i = start; i < end; i++) out[i] = round(Math.fround((data[i] as number) / s), E4M3) * s;
      }
    }
  }
}

/** One scale per output channel (row of W[out, in]). */
const FP8_DEFAULT_TILE: Tile = [1, -1];
/** Each tile's scale is an FP32. */
const FP8_SCALE_BITS = 32;
const FP8_NAMES = ['fp8', 'fp8-e4m3', 'fp8-e4m3-channel', 'fp8e4m3'];

export const fp8Family: FormatFamily<Fp8Format> = {
  kind: 'fp8',
  syntax: 'fp8[:block=<n>|<r>x<c>]   (E4M3, one scale per output channel by default)',
  summary: 'fp8',
  weightChoices: ['fp8'],
  factorChoices: ['fp8'],
  tiling: 'free',
  parse: (base, options) =>
    FP8_NAMES.includes(base)
      ? {
          kind: 'fp8',
          tile: parseBlockOnly('fp8', options, FP8_DEFAULT_TILE, (o) => (isFlag(o, 'channel') ? [1, -1] : undefined)),
        }
      : undefined,
  ...blockOnlyNaming('fp8', FP8_DEFAULT_TILE, 'FP8 E4M3', 'FP8 E4M3 per channel'),
  storage: (f, rows, cols) =>
    storageBreakdown(rows * cols, MINIFLOATS.e4m3.bits, tileCount(rows, cols, f.tile) * FP8_SCALE_BITS),
  fakeQuantize: fakeQuantizeFp8,
};
