/**
 * Symmetric band → tridiagonal by bulge chasing with Householder reflectors (the scheme of
 * LAPACK's sb2st; the kernel is in band-chase-kernel.ts). About 6·n²·b flops, all on b×b blocks
 * that stay in cache: in WebAssembly on this thread (band-chase-wasm.ts), or where that is not
 * available in JS, the sweeps of a band 12 or more wide then shared with a worker on two or more
 * cores (band-chase-worker.ts). Every route gives the same values bit for bit.
 */
import { createChaseKernel } from './band-chase-kernel';
import { chaseInWasm } from './band-chase-wasm';
import { chaseInParallel, wantsParallelChase } from './band-chase-worker';
import type { FloatArray } from './kernels';
import type { StepClock } from './progress';

/**
 * Lower band of a symmetric matrix, stored by columns: entry (i, j) with 0 ≤ i − j < ld lives at
 * data[j·ld + (i − j)]. ld = 2b leaves room for the bulges created while chasing.
 */
export interface SymmetricBand {
  n: number;
  bandwidth: number;
  ld: number;
  data: Float64Array;
}

export function emptyBand(n: number, bandwidth: number, data?: Float64Array): SymmetricBand {
  const b = Math.max(1, Math.min(bandwidth, Math.max(1, n - 1)));
  const ld = 2 * b;
  const len = n * ld;
  let store: Float64Array;
  if (data && data.length >= len) {
    store = data.subarray(0, len);
    store.fill(0);
  } else store = new Float64Array(len);
  return { n, bandwidth: b, ld, data: store };
}

/** Copies the lower band (0 ≤ i − j ≤ b) of a dense row-major symmetric n×n matrix. */
export function bandFromDense(a: FloatArray, n: number, bandwidth: number): SymmetricBand {
  const band = emptyBand(n, bandwidth);
  const { ld, data } = band;
  for (let j = 0; j < n; j++) {
    const top = Math.min(n - 1, j + band.bandwidth);
    for (let i = j; i <= top; i++) data[j * ld + i - j] = a[i * n + j]!;
  }
  return band;
}

export interface Tridiagonal {
  d: Float64Array;
  e: Float64Array;
}

/**
 * Reduces the band (its contents are destroyed) and returns the tridiagonal matrix with the same
 * eigenvalues. `onSweeps` is told how many of the n sweeps are done. `threads` caps the threads
 * of the JS chase (default: 2 when the machine has them and n is large enough to pay for the
 * hand-over); `kernelKind` 'js' skips the WebAssembly kernel (for tests that compare the two).
 */
export async function bandToTridiagonal(
  band: SymmetricBand,
  clock?: StepClock,
  onSweeps?: (done: number) => void,
  threads?: number,
  kernelKind: 'wasm' | 'js' = 'wasm',
): Promise<Tridiagonal> {
  const { n, bandwidth: b, ld } = band;
  let data = band.data;
  if (b > 1 && !(kernelKind === 'wasm' && (await chaseInWasm(data, n, b, ld, clock, onSweeps)))) {
    const kernel = createChaseKernel();
    const parallel = wantsParallelChase(n, threads, b)
      ? await chaseInParallel(data, n, b, ld, kernel, clock, onSweeps)
      : undefined;
    if (parallel) data = parallel;
    else {
      for (let c = 0; c < n - 2; c++) {
        kernel.sweep(data, n, b, ld, c, null);
        if ((c & 15) === 15 && clock?.due()) {
          onSweeps?.(c + 1);
          await clock.tick();
        }
      }
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  for (let j = 0; j < n; j++) d[j] = data[j * ld]!;
  for (let j = 0; j < n - 1; j++) e[j] = data[j * ld + 1]!;
  return { d, e };
}
