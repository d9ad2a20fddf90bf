/**
 * Memory cost of a quantized layer with a rank-k correction (docs/algorithms.md §2.2, §7.1):
 * W[out, in] in the weight format, A[in, k] and B[k, out] in the factor format.
 *
 * Two averages are reported because both are in use:
 * - bits per original weight, (bits(W) + bits(A) + bits(B)) / (n_in·n_out): what the correction
 *   costs per weight it improves (the tool's headline figure);
 * - the LQER authors' workbook figure, the same bits averaged over all stored elements
 *   (n_in·n_out + k(n_in + n_out)), which reads lower.
 */
import { QuantLensError } from '../errors';
import type { NumberFormat } from './formats';
import type { StorageBreakdown } from './formatFamily';
import { storageOf } from './bits';

export interface LowRankLayer {
  readonly nIn: number;
  readonly nOut: number;
  /** k; 0 for no correction. */
  readonly rank: number;
  readonly weightFormat: NumberFormat;
  /** Format of A and B, with the tile it is applied with (e.g. [1, 16] along each factor's last dimension). */
  readonly factorFormat: NumberFormat;
}

export interface LowRankCost {
  readonly weight: StorageBreakdown;
  readonly factorA: StorageBreakdown;
  readonly factorB: StorageBreakdown;
  readonly totalBits: number;
  readonly totalBytes: number;
  /** (bits(W) + bits(A) + bits(B)) / (n_in·n_out). */
  readonly bitsPerOriginalWeight: number;
  /** Workbook convention: total bits / (n_in·n_out + k(n_in + n_out)). */
  readonly averageBitsPerStoredElement: number;
  /** Extra bits of A and B relative to the quantized weight's bits. */
  readonly overheadRatio: number;
  /** Extra parameters relative to the weight's: k(n_in + n_out)/(n_in·n_out). */
  readonly parameterOverhead: number;
}

function checkDimension(name: string, value: number, allowZero: boolean): void {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new QuantLensError(
      'bad-argument',
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${value}`,
    );
  }
}

export function lowRankCost(layer: LowRankLayer): LowRankCost {
  const { nIn, nOut, rank } = layer;
  checkDimension('n_in', nIn, false);
  checkDimension('n_out', nOut, false);
  checkDimension('rank', rank, true);
  const weight = storageOf(layer.weightFormat, nOut, nIn);
  const factorA = storageOf(layer.factorFormat, nIn, rank);
  const factorB = storageOf(layer.factorFormat, rank, nOut);
  const totalBits = weight.totalBits + factorA.totalBits + factorB.totalBits;
  const originals = nIn * nOut;
  const factorElements = rank * (nIn + nOut);
  return {
    weight,
    factorA,
    factorB,
    totalBits,
    totalBytes: totalBits / 8,
    bitsPerOriginalWeight: totalBits / originals,
    averageBitsPerStoredElement: totalBits / (originals + factorElements),
    overheadRatio: (factorA.totalBits + factorB.totalBits) / weight.totalBits,
    parameterOverhead: factorElements / originals,
  };
}

/** The closed form b_W + k(n_in + n_out)·b_AB/(n_in·n_out), for given per-element widths. */
export function bitsPerOriginalWeight(bW: number, bAB: number, nIn: number, nOut: number, rank: number): number {
  return bW + (rank * (nIn + nOut) * bAB) / (nIn * nOut);
}

/** The workbook's (m·n·b_W + k(m + n)·b_AB) / (m·n + k(m + n)). */
export function averageBitsPerStoredElement(bW: number, bAB: number, nIn: number, nOut: number, rank: number): number {
  const originals = nIn * nOut;
  const factors = rank * (nIn + nOut);
  return (originals * bW + factors * bAB) / (originals + factors);
}
