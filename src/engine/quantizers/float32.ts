/**
 * Float32 arithmetic helpers. Reference quantizers run in PyTorch float32; JavaScript computes in
 * float64. One float64 operation on float32 operands followed by `Math.fround` gives the correctly
 * rounded float32 result for + − × ÷ (float64 has more than 2·24+2 bits, so the double rounding is
 * harmless), which is how the kernels reproduce torch bit for bit.
 */

/**
 * Adding then subtracting 1.5·2^52 rounds a float64 of magnitude below 2^51 to an integer in the
 * FPU's default mode, round half to even (torch.round, IEEE roundTiesToEven). Hot loops copy this
 * into a local and inline `(v + magic) − magic`; it is several times faster than Math.round here.
 * The result of a negative value rounding to zero is +0.
 */
export const ROUND_HALF_EVEN_MAGIC = 6755399441055744;

/** Below this magnitude `(v + magic) − magic` is exact round-half-even; above it v is an integer. */
const ROUND_HALF_EVEN_LIMIT = 2 ** 51;

/** Round half to even, keeping the sign of zero as torch.round does (−0.3 → −0). */
export function roundHalfEven(v: number): number {
  if (!(Math.abs(v) < ROUND_HALF_EVEN_LIMIT)) return v;
  const r = v + ROUND_HALF_EVEN_MAGIC - ROUND_HALF_EVEN_MAGIC;
  return r === 0 ? v * 0 : r;
}

const POW2_OFFSET = 1100;
/** 2^e for e in [−1100, 1100] (float64; 2^e underflows to 0 below −1074 and is Infinity above 1023). */
const POW2 = (() => {
  const table = new Float64Array(2 * POW2_OFFSET + 1);
  for (let e = -POW2_OFFSET; e <= POW2_OFFSET; e++) table[e + POW2_OFFSET] = 2 ** e;
  return table;
})();

/** 2^e in float64, by table (integer e in [−1100, 1100]). */
export function pow2(e: number): number {
  return POW2[e + POW2_OFFSET] as number;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * floor(log2(a)) exactly, for finite a > 0. Reads the float32 exponent field when a rounds to a
 * normal float32 (fast), and corrects by one where rounding to float32 crossed a power of two.
 */
export function floorLog2(a: number): number {
  scratchF32[0] = a;
  const field = (scratchU32[0] as number) >>> 23;
  let e: number;
  if (field !== 0 && field < 255) e = field - 127;
  else e = Math.floor(Math.log2(a));
  if (pow2(e) > a) e--;
  else if (pow2(e + 1) <= a) e++;
  return e;
}
