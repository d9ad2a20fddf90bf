/**
 * Householder QR of a tall panel stored column by column (each column contiguous), the layout in
 * which every inner loop of the factorization is a dot product or an axpy over contiguous memory.
 */
import { makeReflector } from './householder';

export interface PanelQr {
  /** Number of reflectors, min(rows, cols). */
  count: number;
  tau: Float64Array;
  /** Diagonal of R (the reflectors' β). */
  rdiag: Float64Array;
}

/**
 * Factors the m×k column-major panel `a` (column j at a[j·m ...]) in place: on return column j
 * holds R above the diagonal and the reflector v_j (with v_j[j] = 1 stored) from the diagonal
 * down, so that panel = H₀·H₁·…·R with H_j = I − τ_j·v_j·v_jᵀ.
 */
export function panelQr(a: Float64Array, m: number, k: number, tau: Float64Array, rdiag: Float64Array): PanelQr {
  const count = Math.min(m, k);
  const beta = new Float64Array(1);
  for (let j = 0; j < count; j++) {
    const cj = j * m;
    const t = makeReflector(a, cj + j, m - j, 1, beta);
    tau[j] = t;
    rdiag[j] = beta[0]!;
    if (t === 0) continue;
    for (let c = j + 1; c < k; c++) {
      const cc = c * m;
      let s = 0;
      for (let i = j; i < m; i++) s += a[cj + i]! * a[cc + i]!;
      s *= t;
      for (let i = j; i < m; i++) a[cc + i] = a[cc + i]! - s * a[cj + i]!;
    }
  }
  for (let j = count; j < k; j++) rdiag[j] = a[j * m + j] ?? 0;
  return { count, tau, rdiag };
}

/**
 * The upper-triangular T (count×count, row-major) with H₀·H₁·…·H_{count−1} = I − V·T·Vᵀ, the
 * compact WY form that turns the reflectors' application into matrix products.
 */
export function compactWyFactor(a: Float64Array, m: number, qr: PanelQr, t: Float64Array): void {
  const k = qr.count;
  t.fill(0, 0, k * k);
  const z = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const tj = qr.tau[j]!;
    t[j * k + j] = tj;
    if (tj === 0) continue;
    const cj = j * m;
    // z = V[:, 0:j]ᵀ·v_j; v_j vanishes above row j and v_j[j] = 1.
    for (let i = 0; i < j; i++) {
      const ci = i * m;
      let s = a[ci + j]!;
      for (let r = j + 1; r < m; r++) s += a[ci + r]! * a[cj + r]!;
      z[i] = s;
    }
    // T[0:j, j] = −τ_j·T[0:j, 0:j]·z (T upper triangular).
    for (let i = 0; i < j; i++) {
      let s = 0;
      for (let l = i; l < j; l++) s += t[i * k + l]! * z[l]!;
      t[i * k + j] = -tj * s;
    }
  }
}
