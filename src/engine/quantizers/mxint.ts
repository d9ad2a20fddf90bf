/**
 * MXINT fake quantization, in the two flavours the official repositories implement.
 *
 * `lqer`: LQER's `block_fp` quantizer, reproduced bit for bit (docs/algorithms.md §2.1, checked against
 * fixtures produced by the official code). Every float32 rounding of the reference is reproduced;
 * the comments name the reference step each line stands for. Two effects of how the reference
 * assembles its output are reproduced too: `F.fold` sums the blocks into a zeroed tensor and the
 * pass-through mix is `keep·q + close·x`, so no output is ever −0 (hence the `+ 0` below), and a
 * NaN tile stays NaN even where x is close to 0 (0·NaN = NaN).
 *
 * `qera`: QERA's `mxint` quantizer: floor exponent read from the float32 exponent field, magnitudes
 * scaled by 2^(w−2), bf16-subnormal inputs flushed to zero.
 *
 * Hot loops avoid data-dependent branches (signs are applied from the sign bit, maxima taken on
 * integer bit patterns): mispredictions on random signs cost more than the arithmetic.
 */
import { ROUND_HALF_EVEN_MAGIC, pow2 } from './float32';
import {
  FormatSyntaxError,
  blockOption,
  isFlag,
  parseElementBits,
  parseTile,
  requireValue,
  storageBreakdown,
  tileLabel,
  type FormatFamily,
  type Tile,
} from './formatFamily';
import { TileAbsMax, bandAbsMax, bitsView, tileCount, tileGrid } from './tiling';

/**
 * MXINT: sign–magnitude integers sharing a power-of-two exponent per tile.
 * - `lqer`: the official LQER `block_fp` quantizer (ceil exponent, bit-exact; docs/algorithms.md §2.1).
 * - `qera`: the official QERA `mxint` quantizer (floor exponent from the float32 exponent field).
 */
export interface MxintFormat {
  readonly kind: 'mxint';
  /** Element width w: 1 sign bit + (w−1) magnitude bits; 2…8. */
  readonly bits: number;
  /** Width of the shared exponent; 8 in every published configuration. */
  readonly exponentBits: number;
  readonly tile: Tile;
  readonly flavour: MxintFlavour;
}

export type MxintFlavour = 'lqer' | 'qera';

/** torch.isclose(x, 0): |x| ≤ atol + rtol·0 with atol = 1e-8, compared in float32. */
export const CLOSE_TO_ZERO = Math.fround(1e-8);
/** The `+ 1e-9` of `abs(x) + 1e-9`, as the float32 constant torch adds. */
export const NUDGE = Math.fround(1e-9);
const SIGN_BIT_OF_NEGATIVE_ZERO = 0x80000000;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * ceil(torch.log2(m)) for a float32 m > 0: log2 is rounded to float32 before the ceil, so a max a
 * few ulps above 2^E keeps exponent E. The exponent field answers directly unless m is a power of
 * two (E = e) or within 2^−10 above one, where float32 log2 may round to e; only then is log2 called.
 */
function ceilFloat32Log2(m: number): number {
  scratchF32[0] = m;
  const e = ceilLog2OfBits(scratchU32[0] as number);
  return e === e ? e : Math.ceil(Math.fround(Math.log2(m)));
}

/**
 * ceilFloat32Log2 of the float32 with these bits where the exponent field settles it (a normal
 * value that is a power of two or clearly above one); NaN where float32 log2 must be taken.
 */
export function ceilLog2OfBits(bits: number): number {
  const field = bits >>> 23;
  const mantissa = bits & 0x7fffff;
  if (field !== 0 && field !== 255) {
    if (mantissa === 0) return field - 127;
    // m ≥ 2^e·(1 + 2^−10): log2 m − e > 1.4e-3, far above float32's ulp at |e| ≤ 128 (1.5e-5).
    if (mantissa >= 0x2000) return field - 126;
  }
  return NaN;
}

/**
 * Where lqerTileScale's common case answers for a tile whose max has these bits (a max above
 * CLOSE_TO_ZERO whose bits settle its exponent): the index of its clamped exponent in
 * lqerScaleTables; −1 where lqerTileScale itself must be asked.
 */
function lqerTableIndex(maxBits: number, closeToZeroBits: number, minExponent: number, maxExponent: number): number {
  if (!(maxBits > closeToZeroBits)) return -1;
  const e = ceilLog2OfBits(maxBits);
  if (e !== e) return -1;
  return (e < minExponent ? minExponent : e > maxExponent ? maxExponent : e) - minExponent;
}

/** Per shared exponent E in [min, max]: the scale 2^E in float32 (∞ past its range), s/shift and shift/s. */
export function lqerScaleTables(
  minExponent: number,
  maxExponent: number,
  shift: number,
): { scales: Float64Array; steps: Float64Array; inverseSteps: Float64Array } {
  const n = maxExponent - minExponent + 1;
  const scales = new Float64Array(n);
  const steps = new Float64Array(n);
  const inverseSteps = new Float64Array(n);
  for (let e = minExponent; e <= maxExponent; e++) {
    const s = Math.fround(2 ** e);
    scales[e - minExponent] = s;
    steps[e - minExponent] = s / shift;
    inverseSteps[e - minExponent] = shift / s;
  }
  return { scales, steps, inverseSteps };
}

/**
 * 2^E of an LQER tile whose largest |x| is `blockMax`; 0 marks a tile whose every element passes
 * through, ∞ or NaN a tile that becomes NaN.
 */
export function lqerTileScale(blockMax: number, minExponent: number, maxExponent: number): number {
  // A tile whose max is ≤ 1e-8 holds only isclose-to-0 elements, which the reference passes
  // through unchanged; this also covers the all-zero tiles its "smallest non-zero max" rule
  // exists for, so that rule never shows in the output.
  if (blockMax <= CLOSE_TO_ZERO) return 0;
  let exponent = ceilFloat32Log2(blockMax);
  if (exponent < minExponent) exponent = minExponent;
  else if (exponent > maxExponent) exponent = maxExponent;
  // float32 2^E: 2^128 overflows to Infinity, so a tile with max > 2^127 becomes NaN, as in
  // the reference (x/∞ = 0, then ∞·0), pass-through elements included. A NaN max (NaN in the
  // tile) gives a NaN scale and a NaN tile, as torch does.
  return Math.fround(pow2(exponent));
}

/**
 * The LQER quantizer's ranges for a format: shared exponents in [−bias, 2^e − 1 − bias], codes in
 * [0, 2^(w−1) − 1] with 2^(w−1) = shift.
 */
export function lqerRanges(format: MxintFormat): {
  minExponent: number;
  maxExponent: number;
  shift: number;
  maxCode: number;
} {
  const bias = 2 ** (format.exponentBits - 1) - 1;
  const shift = 2 ** (format.bits - 1);
  return { minExponent: -bias, maxExponent: 2 ** format.exponentBits - 1 - bias, shift, maxCode: shift - 1 };
}

/**
 * One tile's elements [start, end) of a row, given the tile's scale 2^E, its step 2^E/2^(w−1) and
 * inverse step: a scale of 0 passes the elements through, ∞ or NaN makes them NaN.
 */
function quantizeRun(
  data: Float32Array,
  bits: Uint32Array,
  out: Float32Array,
  start: number,
  end: number,
  s: number,
  step: number,
  inverseStep: number,
  maxCode: number,
): void {
  if (s === 0) {
    for (let i = start; i < end; i++) out[i] = (data[i] as number) + 0;
    return;
  }
  if (!(s < Infinity)) {
    out.fill(NaN, start, end);
    return;
  }
  for (let i = start; i < end; i++) {
    const x = data[i] as number;
    const magnitude = Math.abs(x);
    if (magnitude <= CLOSE_TO_ZERO) {
      out[i] = x + 0;
      continue;
    }
    // round((|x| + 1e-9) / 2^E · 2^(w−1)) with the sum in float32, half to even, then the clamp to
    // [0, 2^(w−1)−1]. 2^E and 2^(w−1) are powers of two, so dividing by 2^E then multiplying by
    // 2^(w−1) is one exact multiplication by the inverse step (a quotient too small for float32's
    // normal range would round to code 0 either way).
    let code = Math.fround(magnitude + NUDGE) * inverseStep + ROUND_HALF_EVEN_MAGIC - ROUND_HALF_EVEN_MAGIC;
    if (code > maxCode) code = maxCode;
    // sign(x + 1e-9) is the sign bit of x here because |x| > 1e-8; sign·2^E·(m/2^(w−1)) is exact.
    out[i] = step * code * (1 - 2 * ((bits[i] as number) >>> 31)) + 0;
  }
}

/**
 * LQER `block_fp`. Not idempotent: quantizing an output again can move it (the 1e-9 nudge and the
 * ceil exponent interact), so callers must never re-quantize W_q.
 */
export function fakeQuantizeMxintLqer(
  data: Float32Array,
  rows: number,
  cols: number,
  format: MxintFormat,
  out: Float32Array,
): void {
  const grid = tileGrid(rows, cols, format.tile);
  if (grid.tileRows === 1) {
    rowTilesMxintLqer(data, rows, cols, grid.tileCols, format, out);
    return;
  }
  const bits = bitsView(data);
  const { minExponent, maxExponent, shift, maxCode } = lqerRanges(format);
  const closeToZero = CLOSE_TO_ZERO;
  const amax = new TileAbsMax(grid.tilesAcross);
  const tables = lqerScaleTables(minExponent, maxExponent, shift);
  scratchF32[0] = closeToZero;
  const closeToZeroBits = scratchU32[0] as number;
  // 2^E per tile; 0 marks a tile whose every element passes through (see below).
  const scale = new Float64Array(grid.tilesAcross);
  // 2^E/2^(w−1) and its inverse, per tile: one band of [16, 1] tiles revisits each tile 16 times.
  const step = new Float64Array(grid.tilesAcross);
  const inverseStep = new Float64Array(grid.tilesAcross);

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    bandAbsMax(bits, grid, r0, r1, amax);
    for (let t = 0; t < grid.tilesAcross; t++) {
      const i = lqerTableIndex(amax.bits[t] as number, closeToZeroBits, minExponent, maxExponent);
      if (i >= 0) {
        scale[t] = tables.scales[i] as number;
        step[t] = tables.steps[i] as number;
        inverseStep[t] = tables.inverseSteps[i] as number;
        continue;
      }
      const s = lqerTileScale(amax.values[t] as number, minExponent, maxExponent);
      scale[t] = s;
      if (s === 0) continue;
      step[t] = s / shift;
      inverseStep[t] = shift / s;
    }

    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        quantizeRun(
          data,
          bits,
          out,
          start,
          end,
          scale[t] as number,
          step[t] as number,
          inverseStep[t] as number,
          maxCode,
        );
      }
    }
  }
}

/**
 * fakeQuantizeMxintLqer for tiles one row high (the default [1, 16], and the factors' tiles):
 * each tile's max is taken and the tile quantized at once, its step from the bits of the max, as
 * the fused error pass does (methods/errorBands.ts); bit for bit the band loop's result. With
 * tiles this short the band loop's per-tile arrays and calls cost more than the arithmetic (the
 * partial-tile variants of a 4096×64 factor, 2M elements: 44 → 30 ms warm).
 */
function rowTilesMxintLqer(
  data: Float32Array,
  rows: number,
  cols: number,
  tileCols: number,
  format: MxintFormat,
  out: Float32Array,
): void {
  const bits = bitsView(data);
  const { minExponent, maxExponent, shift, maxCode } = lqerRanges(format);
  const { scales, steps, inverseSteps } = lqerScaleTables(minExponent, maxExponent, shift);
  const closeToZero = CLOSE_TO_ZERO;
  scratchF32[0] = closeToZero;
  const closeToZeroBits = scratchU32[0] as number;
  for (let r = 0; r < rows; r++) {
    const rowStart = r * cols;
    const rowEnd = rowStart + cols;
    for (let start = rowStart; start < rowEnd; start += tileCols) {
      const end = Math.min(start + tileCols, rowEnd);
      let m = 0;
      for (let i = start; i < end; i++) {
        const d = ((bits[i] as number) & 0x7fffffff) - m;
        m += d & ~(d >> 31);
      }
      const k = lqerTableIndex(m, closeToZeroBits, minExponent, maxExponent);
      let s: number;
      let step: number;
      let inverseStep: number;
      if (k >= 0) {
        s = scales[k] as number;
        step = steps[k] as number;
        inverseStep = inverseSteps[k] as number;
      } else {
        scratchU32[0] = m;
        s = lqerTileScale(scratchF32[0], minExponent, maxExponent);
        step = s / shift;
        inverseStep = shift / s;
      }
      quantizeRun(data, bits, out, start, end, s, step, inverseStep, maxCode);
    }
  }
}

/** QERA `mxint`. Tiles generalise its single `block_axis`: [1, n] is axis −1, [n, 1] is axis 0. */
export function fakeQuantizeMxintQera(
  data: Float32Array,
  rows: number,
  cols: number,
  format: MxintFormat,
  out: Float32Array,
): void {
  const grid = tileGrid(rows, cols, format.tile);
  const bits = bitsView(data);
  const shift = 2 ** (format.bits - 2);
  const inverseShift = 1 / shift;
  const maxCode = 2 ** (format.bits - 1) - 1;
  const magic = ROUND_HALF_EVEN_MAGIC;
  const maxField = new Int32Array(grid.tilesAcross);
  const scale = new Float64Array(grid.tilesAcross);
  const inverseScale = new Float64Array(grid.tilesAcross);

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    // Shared exponent = the largest float32 exponent field in the tile. Elements below the bf16
    // (= float32) smallest normal are flushed to 0 first; their field is 0, so they never win.
    maxField.fill(0);
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        let m = maxField[t] as number;
        for (let i = start; i < end; i++) {
          const d = (((bits[i] as number) >>> 23) & 0xff) - m;
          m += d & ~(d >> 31);
        }
        maxField[t] = m;
      }
    }
    for (let t = 0; t < grid.tilesAcross; t++) {
      // An all-zero tile gets field 1; the float built from the field is 2^(field−127), and
      // field 255 builds Infinity, as the reference's bit cast does.
      const field = (maxField[t] as number) || 1;
      scale[t] = Math.fround(pow2(field - 127));
      // Exact: a power of two (1/∞ = 0 matches x/∞ = 0).
      inverseScale[t] = 1 / (scale[t] as number);
    }

    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        const s = scale[t] as number;
        // A product too small for float32's normal range would round to code 0 either way, so
        // x/2^E needs no fround.
        const inverse = inverseScale[t] as number;
        for (let i = start; i < end; i++) {
          const u = bits[i] as number;
          const magnitude = u & 0x7f800000 ? Math.abs(data[i] as number) : 0;
          let code = magnitude * inverse * shift + magic - magic;
          if (code > maxCode) code = maxCode;
          // (code · 2^E) can overflow float32 to ∞ before the division, as in the reference.
          const y = Math.fround(code * s) * inverseShift;
          // The reference applies the sign with x < 0: a flushed negative subnormal comes out as
          // −0, but −0 itself as +0.
          out[i] = u === SIGN_BIT_OF_NEGATIVE_ZERO ? 0 : y * (1 - 2 * (u >>> 31));
        }
      }
    }
  }
}

/** LQER paper: 16 consecutive input channels; QERA's default `block_size=32` along the last axis. */
const LQER_TILE: Tile = [1, 16];
const QERA_TILE: Tile = [1, 32];

function defaultMxintTile(flavour: MxintFlavour): Tile {
  return flavour === 'lqer' ? LQER_TILE : QERA_TILE;
}

export const mxintFamily: FormatFamily<MxintFormat> = {
  kind: 'mxint',
  syntax: 'mxint<2-8>[:block=<n>|<r>x<c>][:exp=<bits>][:lqer|:qera]   e.g. mxint4, mxint3:block=32, mxint8:block=16x1',
  summary: 'mxint2…8',
  weightChoices: ['mxint2', 'mxint3', 'mxint4', 'mxint6', 'mxint8'],
  factorChoices: ['mxint8', 'mxint6', 'mxint4'],
  tiling: 'free',
  parse(base, options) {
    const match = /^mxint(\d+)$/.exec(base);
    if (!match) return undefined;
    const bits = parseElementBits(match[1] ?? '');
    let tile: Tile | undefined;
    let exponentBits = 8;
    let flavour: MxintFlavour = 'lqer';
    for (const option of options) {
      if (option.key === 'block') tile = parseTile(requireValue(option));
      else if (option.key === 'exp') {
        exponentBits = Number(requireValue(option));
        if (!Number.isInteger(exponentBits) || exponentBits < 2 || exponentBits > 8) {
          throw new FormatSyntaxError('the shared exponent width (exp=) must be 2…8 bits');
        }
      } else if (isFlag(option, 'lqer')) flavour = 'lqer';
      else if (isFlag(option, 'qera')) flavour = 'qera';
      else throw new FormatSyntaxError(`"${option.key}" is not an MXINT option`);
    }
    if (flavour === 'qera' && exponentBits !== 8) {
      throw new FormatSyntaxError(
        'the QERA flavour reads the float32 exponent field, so its shared exponent is always 8 bits',
      );
    }
    return { kind: 'mxint', bits, exponentBits, tile: tile ?? defaultMxintTile(flavour), flavour };
  },
  print(f) {
    const exp = f.exponentBits === 8 ? '' : `:exp=${f.exponentBits}`;
    const flavour = f.flavour === 'lqer' ? '' : ':qera';
    return `mxint${f.bits}${blockOption(f.tile, defaultMxintTile(f.flavour))}${exp}${flavour}`;
  },
  label(f) {
    const extras = [tileLabel(f.tile)];
    if (f.exponentBits !== 8) extras.push(`${f.exponentBits}-bit exp`);
    if (f.flavour === 'qera') extras.push('QERA rounding');
    return `MXINT${f.bits} (${extras.join(', ')})`;
  },
  defaultTile: (f) => defaultMxintTile(f.flavour),
  // One shared exponent of `exponentBits` (8: E8M0-like) per tile.
  storage: (f, rows, cols) => storageBreakdown(rows * cols, f.bits, tileCount(rows, cols, f.tile) * f.exponentBits),
  fakeQuantize(data, rows, cols, f, out) {
    if (f.flavour === 'lqer') fakeQuantizeMxintLqer(data, rows, cols, f, out);
    else fakeQuantizeMxintQera(data, rows, cols, f, out);
  },
};
