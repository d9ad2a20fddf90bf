/**
 * E = W − W_q over W's own storage, one band of rows at a time, and the norms of the pass.
 *
 * A band's W_q depends on that band alone (the formats taken this way have no tile that crosses a
 * band), so a band can be turned into E as soon as its rows have been read: the reader's other
 * lanes keep the kernel copying the rest of the layer meanwhile (BlockSource reads several chunks
 * at once). The bands are processed in order and their norms summed in that order, so the result
 * does not depend on when the rows arrived.
 */
import { throwIfCancelled } from '../errors';
import { fakeQuantize } from '../quantizers/fakeQuantize';
import type { NumberFormat } from '../quantizers/formats';
import {
  CLOSE_TO_ZERO,
  NUDGE,
  lqerRanges,
  lqerScaleTables,
  lqerTileScale,
  type MxintFormat,
} from '../quantizers/mxint';
import { ROUND_HALF_EVEN_MAGIC } from '../quantizers/float32';
import { bitsView, tileGrid } from '../quantizers/tiling';

/** What one pass over W and E gives besides E itself. */
export interface ErrorNorms {
  /** Σ_o E[o, i]² per input channel i. */
  errorColumnSq: Float64Array;
  /** Σ_o W[o, i]² per input channel, when asked for (a diagonal output metric needs it). */
  weightColumnSq: Float64Array | null;
  weightSq: number;
  errorSq: number;
  /** Entries of W that are NaN or ±Inf. */
  nonFinite: number;
}

/** colW[i] += data[row + i]² for one row of W (the per-channel sums a diagonal output metric needs). */
function addRowSquares(data: Float32Array, row: number, nIn: number, colW: Float64Array): void {
  for (let i = 0; i < nIn; i++) {
    const w = data[row + i]!;
    colW[i]! += w * w;
  }
}

/**
 * E = W − W_q into `e` (which may be W's or W_q's own storage) and the norms, in one pass over the
 * weight. Fresh memory costs about as much per byte as this whole pass, so nothing else is
 * allocated.
 */
export function errorPass(
  data: Float32Array,
  wq: Float32Array,
  e: Float32Array,
  out: number,
  nIn: number,
  weightColumns: boolean,
): ErrorNorms {
  const colE = new Float64Array(nIn);
  const colW = weightColumns ? new Float64Array(nIn) : null;
  let nonFinite = 0;
  let weightSq = 0;
  for (let o = 0; o < out; o++) {
    const row = o * nIn;
    // Before the loop below: E may be written over W.
    if (colW) addRowSquares(data, row, nIn, colW);
    for (let i = 0; i < nIn; i++) {
      const w = data[row + i]!;
      const d = Math.fround(w - wq[row + i]!);
      e[row + i] = d;
      colE[i]! += d * d;
      weightSq += w * w;
      if (!Number.isFinite(w)) nonFinite++;
    }
  }
  let errorSq = 0;
  for (let i = 0; i < nIn; i++) errorSq += colE[i]!;
  return { errorColumnSq: colE, weightColumnSq: colW, weightSq, errorSq, nonFinite };
}

/**
 * errorPass(data, fakeQuantize(data), data, …) for LQER's MXINT with tiles one row high (the
 * default [1, 16]), in one pass: each element is quantized and its error taken at once, with no
 * W_q written and read back (14336×4096 first numbers, alternated 5×: 1.50–1.92 s → 1.38–1.65 s).
 * Bit for bit the same E and norms (every float32 rounding of the two steps kept, sums in the
 * same order).
 */
function mxintLqerErrorPass(
  data: Float32Array,
  rows: number,
  nIn: number,
  format: MxintFormat,
  weightColumns: boolean,
): ErrorNorms {
  const { tileCols } = tileGrid(rows, nIn, format.tile);
  const { minExponent, maxExponent, shift, maxCode } = lqerRanges(format);
  const closeToZero = CLOSE_TO_ZERO;
  const nudge = NUDGE;
  const magic = ROUND_HALF_EVEN_MAGIC;
  const bits = bitsView(data);
  const colE = new Float64Array(nIn);
  const colW = weightColumns ? new Float64Array(nIn) : null;
  const amax = new Float32Array(1);
  const amaxBits = new Uint32Array(amax.buffer);
  const { scales, steps, inverseSteps } = lqerScaleTables(minExponent, maxExponent, shift);
  amax[0] = closeToZero;
  const closeToZeroBits = amaxBits[0]!;
  let nonFinite = 0;
  let weightSq = 0;
  for (let o = 0; o < rows; o++) {
    const row = o * nIn;
    if (colW) addRowSquares(data, row, nIn, colW);
    for (let c0 = 0; c0 < nIn; c0 += tileCols) {
      const start = row + c0;
      const end = Math.min(start + tileCols, row + nIn);
      // max |x| on the bit patterns, as bandAbsMax takes it.
      let m = 0;
      for (let i = start; i < end; i++) {
        const d = (bits[i]! & 0x7fffffff) - m;
        m += d & ~(d >> 31);
      }
      // lqerTileScale on the bits of the max, its common case written out (mxint.ts's lqerTableIndex,
      // inline here: as a call it made this pass 418–458 ms against 372–376): a normal float32 max
      // whose log2 is an exact or clearly non-integer power, and the step and its inverse from
      // tables (exact powers of two, as the divisions give them).
      const field = m >>> 23;
      const mantissa = m & 0x7fffff;
      let s: number;
      let step: number;
      let inverseStep: number;
      if (m > closeToZeroBits && field !== 0 && field !== 255 && (mantissa === 0 || mantissa >= 0x2000)) {
        let e = mantissa === 0 ? field - 127 : field - 126;
        if (e < minExponent) e = minExponent;
        else if (e > maxExponent) e = maxExponent;
        s = scales[e - minExponent]!;
        step = steps[e - minExponent]!;
        inverseStep = inverseSteps[e - minExponent]!;
      } else {
        amaxBits[0] = m;
        s = lqerTileScale(amax[0], minExponent, maxExponent);
        step = s / shift;
        inverseStep = shift / s;
      }
      // A pass-through tile (scale 0) and a NaN tile (scale ∞ or NaN) as fakeQuantizeMxintLqer
      // takes them; its element arithmetic is written out here so that it stays in this loop.
      if (s === 0 || !(s < Infinity)) {
        for (let i = start; i < end; i++) {
          const w = data[i]!;
          const d = Math.fround(w - (s === 0 ? w + 0 : NaN));
          data[i] = d;
          colE[i - row]! += d * d;
          weightSq += w * w;
          if (!Number.isFinite(w)) nonFinite++;
        }
        continue;
      }
      // A max at or past ∞ is the only sign of a non-finite element (∞ still gets a finite scale
      // where the exponent range clamps it): counted here, out of the loop below.
      if (m >= INFINITY_BITS) for (let i = start; i < end; i++) if (!Number.isFinite(data[i]!)) nonFinite++;
      for (let i = start; i < end; i++) {
        const w = data[i]!;
        const magnitude = Math.abs(w);
        let q = w + 0;
        if (magnitude > closeToZero) {
          let code = Math.fround(magnitude + nudge) * inverseStep + magic - magic;
          if (code > maxCode) code = maxCode;
          q = step * code * (1 - 2 * (bits[i]! >>> 31));
        }
        const d = Math.fround(w - q);
        data[i] = d;
        colE[i - row]! += d * d;
        weightSq += w * w;
      }
    }
  }
  let errorSq = 0;
  for (let i = 0; i < nIn; i++) errorSq += colE[i]!;
  return { errorColumnSq: colE, weightColumnSq: colW, weightSq, errorSq, nonFinite };
}

/** The bits of float32 +∞: an absolute value at or above them is ∞ or NaN. */
const INFINITY_BITS = 0x7f800000;

/** Norms of several parts, summed in the order given. */
export function mergeNorms(parts: ErrorNorms[], nIn: number): ErrorNorms {
  const colE = new Float64Array(nIn);
  const colW = parts[0]?.weightColumnSq ? new Float64Array(nIn) : null;
  let weightSq = 0;
  let errorSq = 0;
  let nonFinite = 0;
  for (const p of parts) {
    for (let i = 0; i < nIn; i++) colE[i]! += p.errorColumnSq[i]!;
    if (colW) for (let i = 0; i < nIn; i++) colW[i]! += p.weightColumnSq![i]!;
    weightSq += p.weightSq;
    errorSq += p.errorSq;
    nonFinite += p.nonFinite;
  }
  return { errorColumnSq: colE, weightColumnSq: colW, weightSq, errorSq, nonFinite };
}

export interface BandedPassSpec {
  out: number;
  nIn: number;
  format: NumberFormat;
  /** The weight format as the settings spell it (to check a pass against the analysis' settings). */
  weightFormat: string;
  /** llama.cpp importance per input channel (`…:imatrix` formats), else null. */
  importance: Float32Array | null;
  weightColumns: boolean;
  /** Rows per band: a whole number of the format's tile rows. */
  band: number;
}

/** The error pass over W in place, fed rows as they become available. */
export class BandedErrorPass {
  private next = 0;
  private readonly parts: ErrorNorms[] = [];
  private scratch: Float32Array | undefined;

  constructor(readonly spec: BandedPassSpec) {}

  /** Rows [0, rows) of `data` hold W (or E where done already): the whole bands among them become E. */
  advance(data: Float32Array, rows: number, signal?: AbortSignal): void {
    const { out, nIn, band, format, importance, weightColumns } = this.spec;
    if (data.length !== out * nIn) throw new Error(`weight has ${data.length} values, expected ${out}×${nIn}`);
    while (this.next * band < out) {
      const r0 = this.next * band;
      const n = Math.min(band, out - r0);
      if (r0 + n > rows) return;
      const w = data.subarray(r0 * nIn, (r0 + n) * nIn);
      if (format.kind === 'mxint' && format.flavour === 'lqer' && format.tile[0] === 1) {
        this.parts.push(mxintLqerErrorPass(w, n, nIn, format, weightColumns));
      } else {
        this.scratch ??= new Float32Array(Math.min(out, band) * nIn);
        const q = fakeQuantize(w, n, nIn, format, { out: this.scratch.subarray(0, n * nIn), importance });
        this.parts.push(errorPass(w, q, w, n, nIn, weightColumns));
      }
      if (++this.next % 64 === 0) throwIfCancelled(signal);
    }
  }

  /** Turns every band left into E and returns the norms of the whole pass. */
  finish(data: Float32Array, signal?: AbortSignal): ErrorNorms {
    this.advance(data, this.spec.out, signal);
    return mergeNorms(this.parts, this.spec.nIn);
  }
}
