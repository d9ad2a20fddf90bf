/**
 * Group-wise uniform integer fake quantization (the GPTQ/AWQ-style baseline; algorithms.md §2.4),
 * in float32 arithmetic with round-half-to-even:
 *
 *   asymmetric  Δ = (max − min)/(2^n − 1), z = round(−min/Δ), q = clamp(round(x/Δ) + z, 0, 2^n − 1),
 *               x̂ = (q − z)·Δ                                   (QLLM `UniformAffineQuantizer`)
 *   symmetric   Δ = max|x|/(2^(n−1) − 1), q = clamp(round(x/Δ), −2^(n−1), 2^(n−1) − 1), x̂ = q·Δ
 *
 * Choices the formula leaves open, fixed here:
 * - min/max are over the group's real elements (a ragged last group is not zero-padded; padding
 *   would drag the range to 0).
 * - The range is not widened to include 0 (GPTQ does that), so z can fall outside [0, 2^n − 1] for
 *   an all-positive or all-negative group. Real LLM weight groups straddle 0, where this never
 *   happens.
 * - Δ stays float32; it is not rounded to the fp16 the storage accounting assumes.
 * - A group with Δ = 0 (constant, or all zero) is reproduced exactly: a constant is representable
 *   with the zero point alone, and it avoids the 0/0 the formula would produce. QLLM instead
 *   clamps Δ to ≥ 1e-5, which distorts genuinely small groups.
 * - No output is −0 (round(−0.3) → 0, not torch's −0): it keeps the sign out of the hot loop.
 * - A NaN input never comes out as a number (a symmetric group containing one becomes NaN).
 */
import type { IntFormat } from './format';
import { ROUND_HALF_EVEN_MAGIC, roundHalfEven } from './float32';
import { TileAbsMax, bandAbsMax, bandMinMax, bitsView, tileGrid } from './tiling';

export function fakeQuantizeIntAsymmetric(
  data: Float32Array,
  rows: number,
  cols: number,
  format: IntFormat,
  out: Float32Array,
): void {
  const grid = tileGrid(rows, cols, format.tile);
  const maxCode = 2 ** format.bits - 1;
  const magic = ROUND_HALF_EVEN_MAGIC;
  const min = new Float64Array(grid.tilesAcross);
  const max = new Float64Array(grid.tilesAcross);
  const step = new Float64Array(grid.tilesAcross);
  const zero = new Float64Array(grid.tilesAcross);

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    bandMinMax(data, grid, r0, r1, min, max);
    for (let t = 0; t < grid.tilesAcross; t++) {
      const delta = Math.fround(Math.fround((max[t] as number) - (min[t] as number)) / maxCode);
      step[t] = delta;
      zero[t] = delta > 0 ? roundHalfEven(Math.fround(-(min[t] as number) / delta)) : 0;
    }
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        const delta = step[t] as number;
        const z = zero[t] as number;
        if (delta === 0) {
          for (let i = start; i < end; i++) out[i] = (data[i] as number) + 0;
          continue;
        }
        if (!(delta > 0)) {
          out.fill(NaN, start, end);
          continue;
        }
        for (let i = start; i < end; i++) {
          let q = Math.fround((data[i] as number) / delta) + magic - magic + z;
          if (q < 0) q = 0;
          else if (q > maxCode) q = maxCode;
          out[i] = (q - z) * delta;
        }
      }
    }
  }
}

export function fakeQuantizeIntSymmetric(
  data: Float32Array,
  rows: number,
  cols: number,
  format: IntFormat,
  out: Float32Array,
): void {
  const grid = tileGrid(rows, cols, format.tile);
  const maxCode = 2 ** (format.bits - 1) - 1;
  const minCode = -(2 ** (format.bits - 1));
  const magic = ROUND_HALF_EVEN_MAGIC;
  const bits = bitsView(data);
  const amax = new TileAbsMax(grid.tilesAcross);
  const step = new Float64Array(grid.tilesAcross);

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    bandAbsMax(bits, grid, r0, r1, amax);
    for (let t = 0; t < grid.tilesAcross; t++) step[t] = Math.fround((amax.values[t] as number) / maxCode);
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        const delta = step[t] as number;
        if (delta === 0) {
          for (let i = start; i < end; i++) out[i] = (data[i] as number) + 0;
          continue;
        }
        if (!(delta > 0)) {
          out.fill(NaN, start, end);
          continue;
        }
        for (let i = start; i < end; i++) {
          let q = Math.fround((data[i] as number) / delta) + magic - magic;
          if (q < minCode) q = minCode;
          else if (q > maxCode) q = maxCode;
          out[i] = q * delta;
        }
      }
    }
  }
}
