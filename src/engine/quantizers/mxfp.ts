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
import type { MxfpFormat } from './format';
import { floorLog2, pow2 } from './float32';
import { MINIFLOATS, roundMinifloatMagnitude, roundToMinifloat } from './minifloat';
import { TileAbsMax, bandAbsMax, bitsView, tileGrid } from './tiling';

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
