/**
 * The small floating-point element types of OCP MX v1.0 / OCP FP8 (E2M1, E2M3, E3M2, E4M3, E5M2)
 * and rounding of a real value to them: round to nearest, ties to even, saturating at the largest
 * normal (the conversion OCP MX specifies for elements; FP8 "saturation mode").
 */
import { ROUND_HALF_EVEN_MAGIC } from './float32';

export type MinifloatName = 'e2m1' | 'e2m3' | 'e3m2' | 'e4m3' | 'e5m2';

export const MINIFLOAT_NAMES: readonly MinifloatName[] = ['e2m1', 'e2m3', 'e3m2', 'e4m3', 'e5m2'];

export interface MinifloatSpec {
  readonly name: MinifloatName;
  readonly bits: number;
  readonly exponentBits: number;
  readonly mantissaBits: number;
  readonly bias: number;
  /** Largest finite magnitude. */
  readonly maxNormal: number;
  /** Exponent of the largest normal binade (OCP "emax_elem"). */
  readonly maxExponent: number;
  /** Exponent of the smallest normal binade; subnormals share its step. */
  readonly minExponent: number;
  /**
   * Per binade e (index e − minExponent): 1.5·2^52·step(e). `(a + c) − c` rounds a ∈ [0, 2^(e+1))
   * to a multiple of step(e) = 2^(e − mantissaBits), half to even, in one float64 add and subtract.
   */
  readonly roundingConstants: Float64Array;
}

function spec(name: MinifloatName, exponentBits: number, mantissaBits: number, maxNormal: number): MinifloatSpec {
  const bias = 2 ** (exponentBits - 1) - 1;
  const minExponent = 1 - bias;
  const maxExponent = Math.floor(Math.log2(maxNormal));
  const roundingConstants = new Float64Array(maxExponent - minExponent + 1);
  for (let e = minExponent; e <= maxExponent; e++) {
    roundingConstants[e - minExponent] = ROUND_HALF_EVEN_MAGIC * 2 ** (e - mantissaBits);
  }
  return {
    name,
    bits: 1 + exponentBits + mantissaBits,
    exponentBits,
    mantissaBits,
    bias,
    maxNormal,
    maxExponent,
    minExponent,
    roundingConstants,
  };
}

/**
 * The FP6/FP4 types have no Inf/NaN, so their top binade is all finite; OCP E4M3 gives up only
 * S.1111.111 (NaN), hence 1.75·2^8 = 448; E5M2 keeps IEEE Inf/NaN, hence 1.75·2^15 = 57344.
 */
export const MINIFLOATS: Readonly<Record<MinifloatName, MinifloatSpec>> = {
  e2m1: spec('e2m1', 2, 1, 6),
  e2m3: spec('e2m3', 2, 3, 7.5),
  e3m2: spec('e3m2', 3, 2, 28),
  e4m3: spec('e4m3', 4, 3, 448),
  e5m2: spec('e5m2', 5, 2, 57344),
};

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * Rounds a magnitude in [0, maxNormal) to the element grid, half to even. `exponent` is
 * floor(log2(magnitude)) (anything below the smallest normal binade means that binade; one too high
 * is harmless for a value just below a power of two, which rounds to that power either way).
 * Branch-free apart from a never-taken guard, for hot loops that already know the exponent.
 */
export function roundMinifloatMagnitude(magnitude: number, exponent: number, element: MinifloatSpec): number {
  let binade = exponent - element.minExponent;
  binade &= ~(binade >> 31);
  const c = element.roundingConstants[binade] as number;
  const q = magnitude + c - c;
  return q > element.maxNormal ? element.maxNormal : q;
}

/**
 * Nearest value of the element type, ties to even, |result| ≤ maxNormal (NaN stays NaN). The
 * result carries v's sign bit (−0 stays −0; a small negative value gives −0), as a cast to the
 * element type does. `v` is expected to be float32-representable (every caller's is): its binade
 * is read from the float32 exponent field and its sign from the sign bit.
 */
export function roundToMinifloat(v: number, element: MinifloatSpec): number {
  scratchF32[0] = v;
  const bits = scratchU32[0] as number;
  const sign = 1 - 2 * (bits >>> 31);
  const magnitude = Math.abs(v);
  if (!(magnitude < element.maxNormal)) return magnitude === magnitude ? sign * element.maxNormal : NaN;
  return sign * roundMinifloatMagnitude(magnitude, ((bits >>> 23) & 0xff) - 127, element);
}
