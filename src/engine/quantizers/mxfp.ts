/**
 * OCP Microscaling floating point (MX v1.0, §6.3 conversion): per tile,
 *   X = 2^(floor(log2(max|x|)) − emax_elem)   (E8M0 shared scale)
 *   x̂ = X · round_elem(x / X)                 (RNE, saturating at the element's max normal)
 *
 * Choices the spec leaves open, fixed here:
 * - floor(log2 amax) is exact (from the float32 exponent); float32 `log2` in some emulators can
 *   round a value just below 2^k up to k and pick the next scale.
 * - The shared exponent is clamped to the E8M0 range [−127, 127]; only the lower bound can bite.
 * - An all-zero tile comes out as it went in (±0; its scale is irrelevant). Outputs carry the
 *   input's sign bit, so a negative value that rounds to zero is −0.
 * - x / X is exact here (float64); in float32 it could only round values far below the smallest
 *   element subnormal, which quantize to 0 either way.
 * Microsoft's `microxcaling` emulator rounds halves away from zero by default; the spec and this
 * code round half to even.
 */
import { floorLog2, pow2 } from './float32';
import {
  FormatSyntaxError,
  blockOption,
  isFlag,
  parseTile,
  requireValue,
  sameTile,
  storageBreakdown,
  tileLabel,
  type FormatFamily,
  type Tile,
} from './formatFamily';
import { MINIFLOATS, roundMinifloatMagnitude, roundToMinifloat, type MinifloatName } from './minifloat';
import { TileAbsMax, bandAbsMax, bitsView, tileCount, tileGrid } from './tiling';

/** OCP MX floating point: minifloat elements with a shared E8M0 (power-of-two) scale per tile. */
export interface MxfpFormat {
  readonly kind: 'mxfp';
  readonly element: MinifloatName;
  readonly tile: Tile;
}

const E8M0_MIN_EXPONENT = -127;
const E8M0_MAX_EXPONENT = 127;

export function fakeQuantizeMxfp(
  data: Float32Array,
  rows: number,
  cols: number,
  format: MxfpFormat,
  out: Float32Array,
): void {
  const element = MINIFLOATS[format.element];
  const grid = tileGrid(rows, cols, format.tile);
  const bits = bitsView(data);
  const amax = new TileAbsMax(grid.tilesAcross);
  // 0 marks an all-zero tile.
  const scale = new Float64Array(grid.tilesAcross);
  const shared = new Int32Array(grid.tilesAcross);
  const maxNormal = element.maxNormal;
  // Loaded once: per-element calls then go to known functions the JIT can inline.
  const round = roundToMinifloat;
  const roundMagnitude = roundMinifloatMagnitude;

  for (let r0 = 0; r0 < rows; r0 += grid.tileRows) {
    const r1 = Math.min(r0 + grid.tileRows, rows);
    bandAbsMax(bits, grid, r0, r1, amax);
    for (let t = 0; t < grid.tilesAcross; t++) {
      const blockMax = amax.values[t] as number;
      if (blockMax === 0) {
        scale[t] = 0;
        continue;
      }
      // An Inf or NaN in the tile makes the scale NaN (E8M0 0xFF), as the spec does.
      if (!(blockMax < Infinity)) {
        scale[t] = NaN;
        continue;
      }
      let exponent = floorLog2(blockMax) - element.maxExponent;
      if (exponent < E8M0_MIN_EXPONENT) exponent = E8M0_MIN_EXPONENT;
      else if (exponent > E8M0_MAX_EXPONENT) exponent = E8M0_MAX_EXPONENT;
      scale[t] = pow2(exponent);
      shared[t] = exponent;
    }
    for (let r = r0; r < r1; r++) {
      const rowStart = r * cols;
      for (let t = 0; t < grid.tilesAcross; t++) {
        const start = rowStart + t * grid.tileCols;
        const end = Math.min(start + grid.tileCols, rowStart + cols);
        const s = scale[t] as number;
        if (s === 0) {
          for (let i = start; i < end; i++) out[i] = data[i] as number;
          continue;
        }
        const inverse = 1 / s;
        // The binade of x/X is x's float32 exponent minus the shared exponent: no float32
        // round trip per element. Zeros and float32 subnormals take the general path.
        const exponentOffset = 127 + (shared[t] as number);
        for (let i = start; i < end; i++) {
          const u = bits[i] as number;
          const v = (data[i] as number) * inverse;
          const magnitude = Math.abs(v);
          const field = (u >>> 23) & 0xff;
          if (!(magnitude < maxNormal) || field === 0) out[i] = round(v, element) * s;
          else out[i] = roundMagnitude(magnitude, field - exponentOffset, element) * (1 - 2 * (u >>> 31)) * s;
        }
      }
    }
  }
}

/** OCP MX v1.0 block size. */
const MXFP_DEFAULT_TILE: Tile = [1, 32];
/** One E8M0 scale per tile. */
const MXFP_SCALE_BITS = 8;

/**
 * Element types per width; the first is the default. OCP lists both variants for MXFP6/MXFP8;
 * E2M3 and E4M3 are the ones inference stacks use for weights.
 */
const MXFP_ELEMENTS: Readonly<Record<string, readonly [MinifloatName, ...MinifloatName[]]>> = {
  '4': ['e2m1'],
  '6': ['e2m3', 'e3m2'],
  '8': ['e4m3', 'e5m2'],
};

export const mxfpFamily: FormatFamily<MxfpFormat> = {
  kind: 'mxfp',
  syntax: 'mxfp4 | mxfp6[:e2m3|:e3m2] | mxfp8[:e4m3|:e5m2] [:block=<n>|<r>x<c>]',
  summary: 'mxfp4, mxfp6, mxfp8',
  weightChoices: ['mxfp4', 'mxfp6', 'mxfp8'],
  factorChoices: ['mxfp8'],
  tiling: 'free',
  parse(base, options) {
    const match = /^mxfp(\d+)$/.exec(base);
    if (!match) return undefined;
    const width = match[1] ?? '';
    const allowed = MXFP_ELEMENTS[width];
    if (!allowed) throw new FormatSyntaxError('MXFP comes in 4, 6 and 8 bits');
    let element = allowed[0];
    let tile = MXFP_DEFAULT_TILE;
    for (const option of options) {
      const named = allowed.find((e) => isFlag(option, e));
      if (option.key === 'block') tile = parseTile(requireValue(option));
      else if (named) element = named;
      else throw new FormatSyntaxError(`"${option.key}" is not an option of mxfp${width}`);
    }
    return { kind: 'mxfp', element, tile };
  },
  print(f) {
    const width = MINIFLOATS[f.element].bits;
    const isDefault = MXFP_ELEMENTS[String(width)]?.[0] === f.element;
    return `mxfp${width}${isDefault ? '' : `:${f.element}`}${blockOption(f.tile, MXFP_DEFAULT_TILE)}`;
  },
  label(f) {
    const tile = sameTile(f.tile, MXFP_DEFAULT_TILE) ? '' : `, ${tileLabel(f.tile)}`;
    return `MXFP${MINIFLOATS[f.element].bits} (${f.element.toUpperCase()}${tile})`;
  },
  defaultTile: () => MXFP_DEFAULT_TILE,
  storage: (f, rows, cols) =>
    storageBreakdown(rows * cols, MINIFLOATS[f.element].bits, tileCount(rows, cols, f.tile) * MXFP_SCALE_BITS),
  fakeQuantize: fakeQuantizeMxfp,
};
