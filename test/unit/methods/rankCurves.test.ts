import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mat, type Mat } from '../../../src/engine/linalg/kernels';
import { rankCurves, type FactorQuantizer, type MetricWeight } from '../../../src/engine/methods/rankCurves';
import { rng } from './helpers';

function randMat(rows: number, cols: number, r: () => number): Mat<Float64Array> {
  return mat(Float64Array.from({ length: rows * cols }, r), rows, cols);
}

/** E [out, in] from E' [in, out]: rankCurves reads the error in its stored layout. */
function stored(eT: Mat<Float64Array>): Mat<Float64Array> {
  const out = new Float64Array(eT.data.length);
  for (let i = 0; i < eT.rows; i++) for (let o = 0; o < eT.cols; o++) out[o * eT.rows + i] = eT.data[i * eT.cols + o]!;
  return mat(out, eT.cols, eT.rows);
}

/** A coarse tile quantizer (scale = tile max / 3, round) over [tr, tc] tiles, zero-padded at the edges. */
function tileQuantizer(tr: number, tc: number): FactorQuantizer {
  return (data, rows, cols) => {
    const out = new Float32Array(data.length);
    for (let r0 = 0; r0 < rows; r0 += tr) {
      for (let c0 = 0; c0 < cols; c0 += tc) {
        let mx = 0;
        for (let r = r0; r < Math.min(rows, r0 + tr); r++)
          for (let c = c0; c < Math.min(cols, c0 + tc); c++) mx = Math.max(mx, Math.abs(data[r * cols + c]!));
        const step = mx / 3 || 1;
        for (let r = r0; r < Math.min(rows, r0 + tr); r++)
          for (let c = c0; c < Math.min(cols, c0 + tc); c++)
            out[r * cols + c] = Math.round(data[r * cols + c]! / step) * step;
      }
    }
    return out;
  };
}

/** Direct evaluation: quantize A[:, :k] and B[:k, :] as a user at rank k would, then ‖E' − ÃB̃‖²_Q. */
function bruteForce(
  E: Mat<Float64Array>,
  A: Mat<Float64Array>,
  B: Mat<Float64Array>,
  k: number,
  qa: FactorQuantizer,
  qb: FactorQuantizer,
  w: MetricWeight,
): number {
  const n = E.rows,
    o = E.cols;
  const Ak = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) Ak[i * k + j] = A.data[i * A.cols + j]!;
  const Bk = Float32Array.from(B.data.subarray(0, k * o));
  const Aq = k ? qa(Ak, n, k) : Ak;
  const Bq = k ? qb(Bk, k, o) : Bk;
  const D = new Float64Array(n * o);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < o; c++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += Aq[i * k + j]! * Bq[j * o + c]!;
      D[i * o + c] = E.data[i * o + c]! - s;
    }
  let err = 0;
  for (let c = 0; c < o; c++)
    for (let i = 0; i < n; i++)
      for (let l = 0; l < n; l++) {
        const q =
          w.kind === 'identity'
            ? i === l
              ? 1
              : 0
            : w.kind === 'diagonal'
              ? i === l
                ? w.d[i]!
                : 0
              : w.R.data[i * n + l]!;
        if (q !== 0) err += D[i * o + c]! * q * D[l * o + c]!;
      }
  return err;
}

test('rank curves equal direct evaluation at every rank, with partial-tile quantization of the factors', async () => {
  const r = rng(7);
  const n = 23,
    o = 17,
    R = 13;
  const E = randMat(n, o, r);
  const A = randMat(n, R, r);
  const B = randMat(R, o, r);
  const X = randMat(40, n, r);
  const Rm = new Float64Array(n * n);
  for (let t = 0; t < 40; t++)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) Rm[i * n + j]! += (X.data[t * n + i]! * X.data[t * n + j]!) / 40;
  const weights: MetricWeight[] = [
    { kind: 'identity' },
    { kind: 'diagonal', d: Float64Array.from({ length: n }, () => 0.5 + Math.abs(r())) },
    { kind: 'dense', R: mat(Rm, n, n) },
  ];
  for (const [aTile, bTile, label] of [
    [[1, 4], [1, 4], 'A along rank, B along out (paper)'],
    [[4, 1], [4, 1], 'A along in, B along rank'],
    [[1, 1], [1, 1], 'no straddling tiles'],
  ] as const) {
    const qa = tileQuantizer(aTile[0], aTile[1]);
    const qb = tileQuantizer(bTile[0], bTile[1]);
    const curves = await rankCurves(
      {
        error: stored(E),
        A,
        B,
        aQuant: { quantize: qa, rankTile: aTile[1] },
        bQuant: { quantize: qb, rankTile: bTile[0] },
      },
      weights,
    );
    for (let wi = 0; wi < weights.length; wi++) {
      for (let k = 0; k <= R; k++) {
        const expect = bruteForce(E, A, B, k, qa, qb, weights[wi]!);
        const got = curves[wi]!.errSq[k]!;
        assert.ok(
          Math.abs(got - expect) <= 1e-9 * Math.max(1, expect),
          `${label}, weight ${weights[wi]!.kind}, k=${k}: ${got} vs ${expect}`,
        );
      }
    }
  }
});

test('with unquantized SVD factors the identity curve is the tail energy of the spectrum', async () => {
  // E' = U diag(σ) Vᵀ with orthonormal U, V built from coordinate axes: the optimum at rank k is Σ_{i>k} σᵢ².
  const n = 6,
    o = 5,
    sig = [5, 3, 2, 1, 0.5];
  const E = new Float64Array(n * o);
  sig.forEach((s, i) => (E[i * o + i] = s));
  const A = new Float64Array(n * o);
  const B = new Float64Array(o * o);
  sig.forEach((s, i) => {
    A[i * o + i] = 1;
    B[i * o + i] = s;
  });
  const [c] = await rankCurves({ error: stored(mat(E, n, o)), A: mat(A, n, o), B: mat(B, o, o) }, [
    { kind: 'identity' },
  ]);
  for (let k = 0; k <= 5; k++) {
    const tail = sig.slice(k).reduce((a, s) => a + s * s, 0);
    assert.ok(Math.abs(c!.errSq[k]! - tail) < 1e-12, `k=${k}`);
  }
});
