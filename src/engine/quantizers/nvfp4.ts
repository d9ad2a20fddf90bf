/**
 * NVIDIA NVFP4: E2M1 elements, one FP8-E4M3 scale per 16-element tile, one FP32 scale per tensor.
 * Follows NVIDIA's published recipe (TensorRT Model Optimizer `NVFP4QTensor`), all in float32:
 *
 *   s_tensor = amax(tensor) / (6 · 448)
 *   s_block  = e4m3( amax(tile) / (6 · s_tensor) )       (a zero amax gives scale 1 first)
 *   d        = s_block · s_tensor
 *   x̂        = d · e2m1(x / d)                            (RNE, saturating at ±6)
 *
 * Choices NVIDIA's description leaves open, fixed here:
 * - Rounding is to nearest-even for both the block scale and the elements (ModelOpt's cast).
 * - A tile whose scale underflows E4M3 (amax(tile) < 2^−10 · 6 · s_tensor, i.e. about 2.2e-6 of
 *   the tensor max) dequantizes to zero, which is what x / 0 → ±6 → ·0 gives in ModelOpt.
 * - An all-zero tensor comes out as it went in. Outputs carry the input's sign bit.
 */
import { blockOnlyNaming, parseBlockOnly, storageBreakdown, type FormatFamily, type Tile } from './formatFamily';
import { MINIFLOATS, roundToMinifloat } from './minifloat';
import { TileAbsMax, bandAbsMax, bitsView, tensorAbsMax, tileCount, tileGrid } from './tiling';

/** NVIDIA NVFP4: E2M1 elements, an FP8-E4M3 scale per tile and one FP32 scale per tensor. */
export interface Nvfp4Format {
  readonly kind: 'nvfp4';
  readonly tile: Tile;
}

export function fakeQuantizeNvfp4(
  data: Float32Array,
  rows: number,
  cols: number,
  format: Nvfp4Format,
  out: Float32Array,
): void {
  const E2M1 = MINIFLOATS.e2m1;
  const E4M3 = MINIFLOATS.e4m3;
  const bits = bitsView(data);
  const tensorMax = tensorAbsMax(bits);
  if (tensorMax === 0) {
    if (out !== data) out.set(data);
    return;
  }
  if (!(tensorMax < Infinity)) {
    out.fill(NaN);
    return;
  }
  const tensorScale = Math.fround(tensorMax / (E2M1.maxNormal * E4M3.maxNormal));
  const blockScaleDivisor = Math.fround(E2M1.maxNormal * tensorScale);
  const grid = tileGrid(rows, cols, format.tile);
  const amax = new TileAbsMax(grid.tilesAcross);
  const step = new Float64Array(grid.tilesAcross);
  // Loaded once: per-element calls then go to a known function the JIT can inline.
  const round = roundToMinifloat;

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    bandAbsMax(bits, grid, r0, r1, amax);
    for (let t = 0; t < grid.tilesAcross; t++) {
      const wanted = Math.fround((amax.values[t] as number) / blockScaleDivisor);
      const blockScale = roundToMinifloat(wanted === 0 ? 1 : wanted, E4M3);
      step[t] = Math.fround(blockScale * tensorScale);
    }
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        const d = step[t] as number;
        if (d === 0) {
          for (let i = start; i < end; i++) out[i] = (data[i] as number) * 0;
          continue;
        }
        for (let i = start; i < end; i++) out[i] = round(Math.fround((data[i] as number) / d), E2M1) * d;
      }
    }
  }
}

/** The NVFP4 micro-block. */
const NVFP4_DEFAULT_TILE: Tile = [1, 16];
/** One FP8-E4M3 scale per tile, plus one FP32 scale for the whole tensor. */
const NVFP4_BLOCK_SCALE_BITS = 8;
const NVFP4_TENSOR_SCALE_BITS = 32;

export const nvfp4Family: FormatFamily<Nvfp4Format> = {
  kind: 'nvfp4',
  syntax: 'nvfp4[:block=<n>|<r>x<c>]',
  summary: 'nvfp4',
  weightChoices: ['nvfp4'],
  factorChoices: [],
  tiling: 'free',
  parse: (base, options) =>
    base === 'nvfp4' ? { kind: 'nvfp4', tile: parseBlockOnly('nvfp4', options, NVFP4_DEFAULT_TILE) } : undefined,
  ...blockOnlyNaming('nvfp4', NVFP4_DEFAULT_TILE, 'NVFP4'),
  storage: (f, rows, cols) =>
    storageBreakdown(
      rows * cols,
      MINIFLOATS.e2m1.bits,
      tileCount(rows, cols, f.tile) * NVFP4_BLOCK_SCALE_BITS + NVFP4_TENSOR_SCALE_BITS,
    ),
  fakeQuantize: fakeQuantizeNvfp4,
};
