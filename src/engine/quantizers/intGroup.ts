/**
 * Group-wise uniform integer fake quantization (the GPTQ/AWQ-style baseline; docs/algorithms.md §2.4),
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
import { ROUND_HALF_EVEN_MAGIC, roundHalfEven } from './float32';
import {
  FormatSyntaxError,
  isFlag,
  parseElementBits,
  parseTile,
  parseTileSize,
  requireValue,
  storageBreakdown,
  tileLabel,
  tileToString,
  type FormatFamily,
  type Tile,
} from './formatFamily';
import { TileAbsMax, bandAbsMax, bandMinMax, bitsView, tileCount, tileGrid } from './tiling';

/** Uniform integers with one scale (and, when asymmetric, one zero point) per group. */
export interface IntFormat {
  readonly kind: 'int';
  /** 2…8. */
  readonly bits: number;
  /** The group; `[1, g]` is "g consecutive input channels". */
  readonly tile: Tile;
  /** true: Δ = max|x|/(2^(n−1)−1), no zero point. false: Δ = (max−min)/(2^n−1) with a zero point. */
  readonly symmetric: boolean;
  /**
   * `:fitted`: the step sizes are fitted to the layer's output error (methods/stepFitting.ts, a
   * layer-local LSQ-style fit inspired by SiLQ) instead of taken from min/max. The storage is the
   * same; `fakeQuantize` alone, having no activations, still gives the min/max (RTN) grid.
   */
  readonly fitted?: boolean;
}

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

/** GPTQ/AWQ-style group of 128 input channels. */
const INT_DEFAULT_TILE: Tile = [1, 128];
/** Each group's scale is stored as fp16 … */
const INT_SCALE_BITS = 16;

export const intFamily: FormatFamily<IntFormat> = {
  kind: 'int',
  syntax: 'int<2-8>[:g<n>|:g=<n>|:channel][:sym|:asym][:fitted]       e.g. int4:g128, int4:g128:sym, int4:g128:fitted',
  summary: 'int2…8[:g128][:sym]',
  weightChoices: ['int2', 'int3', 'int4', 'int8'],
  factorChoices: ['int8'],
  tiling: 'free',
  parse(base, options) {
    const match = /^int(\d+)$/.exec(base);
    if (!match) return undefined;
    const bits = parseElementBits(match[1] ?? '');
    let tile = INT_DEFAULT_TILE;
    let symmetric = false;
    let fitted = false;
    for (const option of options) {
      const shortGroup = /^g(-1|\d+)$/.exec(option.key);
      if (shortGroup && option.value === undefined) tile = [1, parseTileSize(shortGroup[1] ?? '')];
      else if (option.key === 'g' || option.key === 'group') tile = [1, parseTileSize(requireValue(option))];
      else if (option.key === 'block') tile = parseTile(requireValue(option));
      else if (isFlag(option, 'channel')) tile = [1, -1];
      else if (isFlag(option, 'sym')) symmetric = true;
      else if (isFlag(option, 'asym')) symmetric = false;
      else if (isFlag(option, 'fitted')) fitted = true;
      else throw new FormatSyntaxError(`"${option.key}" is not an INT option`);
    }
    return fitted ? { kind: 'int', bits, tile, symmetric, fitted } : { kind: 'int', bits, tile, symmetric };
  },
  print(f) {
    const group = f.tile[0] !== 1 ? `:block=${tileToString(f.tile)}` : f.tile[1] === -1 ? ':channel' : `:g${f.tile[1]}`;
    return `int${f.bits}${group}${f.symmetric ? ':sym' : ''}${f.fitted ? ':fitted' : ''}`;
  },
  label(f) {
    const group = f.tile[0] !== 1 ? tileLabel(f.tile) : f.tile[1] === -1 ? 'per channel' : `g${f.tile[1]}`;
    return `INT${f.bits} ${group} ${f.symmetric ? 'sym' : 'asym'}${f.fitted ? ', fitted steps' : ''}`;
  },
  defaultTile: () => INT_DEFAULT_TILE,
  // … and, when asymmetric, an n-bit zero point per group (n = element width, as GPTQ packs it).
  storage: (f, rows, cols) =>
    storageBreakdown(
      rows * cols,
      f.bits,
      tileCount(rows, cols, f.tile) * (INT_SCALE_BITS + (f.symmetric ? 0 : f.bits)),
    ),
  fakeQuantize(data, rows, cols, f, out) {
    if (f.symmetric) fakeQuantizeIntSymmetric(data, rows, cols, f, out);
    else fakeQuantizeIntAsymmetric(data, rows, cols, f, out);
  },
};
