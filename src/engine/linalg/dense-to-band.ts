/**
 * Dense symmetric → band (first stage of the two-stage eigenvalue reduction), blocked Householder
 * panels of width b with the two-sided trailing updates applied lazily.
 *
 * The trailing matrix is kept as A = A0 − ZAᵀ·ZB: A0 is explicit (last refreshed) and ZA/ZB stack
 * the rank-2b factors (V, W) of the panels since. Each panel then costs one product with A0 whose
 * output is only n×b, plus small corrections, all inside one fused graph; A0 itself is refreshed
 * (an n×n output, the expensive kind here) only every `refreshColumns` columns, and then only its
 * lower block triangle is computed.
 */
import { panelGraph, panelGraphKey, refreshGraph, refreshGraphKey } from './graphs';
import { emptyBand, type SymmetricBand } from './band-to-tridiagonal';
import { dtypeOf, type DType, type FloatArray, type Kernels } from './kernels';
import { compactWyFactor, panelQr } from './panel-qr';
import type { StepClock } from './progress';
import type { Workspace } from './workspace';

export interface DenseToBandOptions {
  bandwidth: number;
  /** Columns reduced between two explicit refreshes of the trailing matrix. */
  refreshColumns: number;
  clock?: StepClock;
  /** Told how many of the n columns are reduced. */
  onColumns?: (done: number) => void;
}

/** Rows per call when refreshing: keeps each call near 30 ms so cancellation stays prompt. */
const REFRESH_BLOCK_ROWS = 256;

/**
 * Reduces the symmetric n×n row-major matrix in `a` (destroyed; only its first n² entries are
 * used) to a band of the given bandwidth with the same eigenvalues, in a's precision: the
 * products run in it (float32 at twice the float64 rate, with half the memory traffic), while the
 * panels' QR and the band itself are float64. A float32 reduction perturbs the eigenvalues by a
 * few units of 6e-8·‖A‖ (Householder reductions are backward stable); docs/algorithms.md §8.3
 * says when that suffices.
 */
export async function denseToBand(
  kernels: Kernels,
  a: FloatArray,
  n: number,
  ws: Workspace,
  opts: DenseToBandOptions,
): Promise<SymmetricBand> {
  const b = Math.max(1, Math.min(opts.bandwidth, n - 1));
  const band = emptyBand(n, b, ws.f64('band', n * 2 * b));
  if (n <= b + 1) {
    // Already a band: copy the lower triangle.
    for (let j = 0; j < n; j++) for (let i = j; i < n; i++) band.data[j * band.ld + i - j] = a[i * n + j]!;
    return band;
  }
  const panelsPerRefresh = Math.max(1, Math.floor(opts.refreshColumns / b));
  // Two spare panels: the last refresh is skipped once the trailing matrix is tiny.
  const zCap = 2 * (panelsPerRefresh + 2) * b;
  const dtype = dtypeOf(a);
  const buf = (name: string, length: number): FloatArray =>
    dtype === 'float32' ? ws.f32(name, length) : ws.f64(name, length);
  const za = buf('sy2sb-za', zCap * n);
  const zb = buf('sy2sb-zb', zCap * n);
  const vpad = buf('sy2sb-v', n * b);
  const pc = ws.f64('sy2sb-panel', n * b);
  const tau = new Float64Array(b);
  const rdiag = new Float64Array(b);
  const tMat = new Float64Array(b * b);
  const tArg = buf('sy2sb-t', b * b);
  // The panel graph's outputs land here (see Kernels.run): fresh arrays per panel cost page faults.
  const wBuf = buf('sy2sb-wout', n * b);
  const pBuf = buf('sy2sb-pout', n * b);
  const panelKey = panelGraphKey(dtype);
  const buildPanel = () => panelGraph(dtype);

  let s = 0; // origin of the explicit trailing matrix A0 (rows/columns s..n−1, stride m0)
  let m0 = n;
  let zRows = 0;
  let panelsSinceRefresh = 0;
  // Current panel: rows c0..n−1 of columns c0..c0+pw−1 of the up-to-date matrix, row-major.
  let c0 = 0;
  let pw = b;
  let panel: FloatArray = new Float64Array(n * b);
  for (let i = 0; i < n; i++) for (let j = 0; j < b; j++) panel[i * b + j] = a[i * n + j]!;

  while (true) {
    // Diagonal block: lower triangle straight into the band.
    for (let j = 0; j < pw; j++) {
      for (let i = j; i < pw; i++) band.data[(c0 + j) * band.ld + i - j] = panel[i * pw + j]!;
    }
    const r0 = c0 + b;
    const m = n - r0;
    if (m <= 0) break;
    // QR of the sub-panel (m × b), copied to column-major.
    const p = pc.subarray(0, m * b);
    for (let i = 0; i < m; i++) for (let j = 0; j < b; j++) p[j * m + i] = panel[(b + i) * pw + j]!;
    const qr = panelQr(p, m, b, tau, rdiag);
    const k = qr.count;
    // R goes into the band below the diagonal block (upper trapezoidal, offsets 1..b).
    for (let j = 0; j < b; j++) {
      const top = Math.min(j, m - 1);
      for (let i = 0; i <= top; i++) {
        band.data[(c0 + j) * band.ld + b + i - j] = i === j ? rdiag[j]! : p[j * m + i]!;
      }
    }
    compactWyFactor(p, m, qr, tMat);
    tArg.set(tMat.subarray(0, k * k));
    // V padded to the explicit matrix's rows (zeros above r0), row-major m0 × k.
    const v = vpad.subarray(0, m0 * k);
    const lead = r0 - s;
    v.fill(0, 0, lead * k);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < k; j++) {
        v[(lead + i) * k + j] = i < j ? 0 : i === j ? 1 : p[j * m + i]!;
      }
    }
    const nextWidth = Math.min(b, n - r0);
    const z = Math.max(1, zRows);
    if (zRows === 0) {
      za.fill(0, 0, m0);
      zb.fill(0, 0, m0);
    }
    const out = await kernels.run(
      panelKey,
      buildPanel,
      {
        A: { data: a.subarray(0, m0 * m0), dims: [m0, m0] },
        ZA: { data: za.subarray(0, z * m0), dims: [z, m0] },
        ZB: { data: zb.subarray(0, z * m0), dims: [z, m0] },
        V: { data: v, dims: [m0, k] },
        T: { data: tArg.subarray(0, k * k), dims: [k, k] },
        cs: { data: BigInt64Array.of(BigInt(lead)), dims: [1] },
        ce: { data: BigInt64Array.of(BigInt(lead + nextWidth)), dims: [1] },
        rs: { data: BigInt64Array.of(BigInt(lead)), dims: [1] },
        kc: { data: BigInt64Array.of(BigInt(k)), dims: [1] },
      },
      {
        Wout: { data: wBuf.subarray(0, m * k), dims: [m, k] },
        Pout: { data: pBuf.subarray(0, m * nextWidth), dims: [m, nextWidth] },
      },
    );
    opts.clock?.check();
    const w = out.Wout!.data as FloatArray;
    panel = out.Pout!.data as FloatArray;
    // Append the panel's factors: ZA gets [Vᵀ; Wᵀ], ZB gets [Wᵀ; Vᵀ], rows padded to m0.
    appendRows(za, zRows, m0, lead, v, lead, m, k);
    appendRows(za, zRows + k, m0, lead, w, 0, m, k);
    appendRows(zb, zRows, m0, lead, w, 0, m, k);
    appendRows(zb, zRows + k, m0, lead, v, lead, m, k);
    zRows += 2 * k;
    c0 = r0;
    pw = nextWidth;
    panelsSinceRefresh++;
    opts.onColumns?.(c0);
    if (panelsSinceRefresh >= panelsPerRefresh && n - c0 > 2 * b) {
      await refresh(kernels, dtype, a, s, m0, c0, za, zb, zRows, ws, opts.clock);
      m0 = n - c0;
      s = c0;
      zRows = 0;
      panelsSinceRefresh = 0;
    } else if (opts.clock) await opts.clock.tick();
  }
  return band;
}

/** Writes the transposes of columns of `src` (rows from `srcRow`, m rows, k columns) as rows of `dst`. */
function appendRows(
  dst: FloatArray,
  firstRow: number,
  stride: number,
  lead: number,
  src: FloatArray,
  srcRow: number,
  m: number,
  k: number,
): void {
  for (let j = 0; j < k; j++) {
    const row = (firstRow + j) * stride;
    dst.fill(0, row, row + lead);
    for (let i = 0; i < m; i++) dst[row + lead + i] = src[(srcRow + i) * k + j]!;
  }
}

/**
 * Makes A0 explicit again from row/column `s2` on: new = old[s2−s:, s2−s:] − (ZAᵀ·ZB)[…], written
 * compactly (stride n − s2) over the old storage. Block rows are processed top-down; each new
 * entry lands at or before the old entries still to be read, so the in-place rewrite is safe.
 */
async function refresh(
  kernels: Kernels,
  dtype: DType,
  a: FloatArray,
  s: number,
  m0: number,
  s2: number,
  za: FloatArray,
  zb: FloatArray,
  zRows: number,
  ws: Workspace,
  clock: StepClock | undefined,
): Promise<void> {
  const d = s2 - s;
  const mNew = m0 - d;
  // Factors as rows (mNew × zRows) so that block rows are contiguous inputs.
  const buf = (name: string, length: number): FloatArray =>
    dtype === 'float32' ? ws.f32(name, length) : ws.f64(name, length);
  const ra = buf('sy2sb-ra', mNew * zRows);
  const rb = buf('sy2sb-rb', mNew * zRows);
  transposeBlock(za, zRows, m0, d, ra, mNew);
  transposeBlock(zb, zRows, m0, d, rb, mNew);
  const outBuf = buf('sy2sb-refresh-out', Math.min(REFRESH_BLOCK_ROWS, mNew) * mNew);
  for (let i0 = 0; i0 < mNew; i0 += REFRESH_BLOCK_ROWS) {
    const r = Math.min(REFRESH_BLOCK_ROWS, mNew - i0);
    const l = i0 + r;
    const old = a.subarray((d + i0) * m0, (d + i0 + r) * m0);
    const out = await kernels.run(
      refreshGraphKey(dtype),
      () => refreshGraph(dtype),
      {
        Old: { data: old, dims: [r, m0] },
        ZA: { data: ra.subarray(i0 * zRows, l * zRows), dims: [r, zRows] },
        ZB: { data: rb.subarray(0, l * zRows), dims: [l, zRows] },
        cs: { data: BigInt64Array.of(BigInt(d)), dims: [1] },
        ce: { data: BigInt64Array.of(BigInt(d + l)), dims: [1] },
      },
      { Out: { data: outBuf.subarray(0, r * l), dims: [r, l] } },
    );
    clock?.check();
    const blk = out.Out!.data as FloatArray;
    for (let rr = 0; rr < r; rr++) a.set(blk.subarray(rr * l, rr * l + l), (i0 + rr) * mNew);
    // Mirror the block's strictly-lower part into the rows above: column c of the block becomes
    // a contiguous run of row c (reads are strided but stay within a few cached lines).
    for (let c = 0; c < i0; c++) {
      const dst = c * mNew + i0;
      for (let rr = 0, src = c; rr < r; rr++, src += l) a[dst + rr] = blk[src]!;
    }
    if (clock) await clock.tick();
  }
}

/**
 * dst (outRows × rows, row-major) = transpose of src[0:rows, off:off+outRows] (src stride `cols`).
 * Writes run contiguously; the strided reads of a 64-row tile stay in cache.
 */
function transposeBlock(
  src: FloatArray,
  rows: number,
  cols: number,
  off: number,
  dst: FloatArray,
  outRows: number,
): void {
  const T = 64;
  for (let j0 = 0; j0 < outRows; j0 += T) {
    const j1 = Math.min(outRows, j0 + T);
    for (let i0 = 0; i0 < rows; i0 += T) {
      const i1 = Math.min(rows, i0 + T);
      for (let j = j0; j < j1; j++) {
        for (let i = i0, d = j * rows + i0, s = i0 * cols + off + j; i < i1; i++, d++, s += cols) dst[d] = src[s]!;
      }
    }
  }
}
