/**
 * FP8 E4M3 with one float32 scale per tile (default: per output channel, i.e. per row of W[out, in]),
 * the usual "FP8 weight, per-channel scale" deployment:
 *
 *   s = amax(tile) / 448,   x̂ = s · e4m3(x / s)   (float32 arithmetic, RNE, saturating)
 *
 * Outputs carry the input's sign bit. A tile whose scale is 0 (all zero, or amax < 448·2^−149 so
 * that the float32 scale underflows) comes out as signed zeros.
 */
import type { Fp8Format } from './format';
import { MINIFLOATS, roundToMinifloat } from './minifloat';
import { TileAbsMax, bandAbsMax, bitsView, tileGrid } from './tiling';

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
