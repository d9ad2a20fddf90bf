import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernels, mat, type Mat } from '../../../src/engine/linalg/kernels';
import { topSingularTriplets } from '../../../src/engine/linalg/randomized-svd';
import {
  leftProduct,
  rankCurves,
  type CurveInputs,
  type FactorQuantizer,
  type MetricWeight,
} from '../../../src/engine/methods/rankCurves';
import { fakeQuantize, parseFormat, withTile } from '../../../src/engine/quantizers';
import { activations, rng, weights } from './helpers';

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

/** A layer-sized float32 error (W − MXINT4(W)) and mxint8 factors tiled as the paper's defaults. */
async function layerSizedInputs(): Promise<{ inputs: CurveInputs; weights: MetricWeight[] }> {
  // 2048×1024 at rank 64: 2²⁷ multiply-adds in B̃·E, where the float32 product is tried.
  const out = 2048;
  const nIn = 1024;
  const R = 64;
  const w = weights(out, nIn, 11);
  const wq = fakeQuantize(w, out, nIn, parseFormat('mxint4'));
  const e = Float32Array.from(w, (v, i) => v - wq[i]!);
  const t = await topSingularTriplets(mat(e, out, nIn), R, { seed: 3 });
  // E' = Eᵀ = V·Σ·Uᵀ: A = V [in, R], B = Σ·Uᵀ [R, out].
  const A = new Float64Array(nIn * R);
  const B = new Float64Array(R * out);
  for (let j = 0; j < R; j++) {
    for (let i = 0; i < nIn; i++) A[i * R + j] = t.vt.data[j * nIn + i]!;
    for (let o = 0; o < out; o++) B[j * out + o] = t.sigma[j]! * t.u.data[o * R + j]!;
  }
  const tile = withTile(parseFormat('mxint8'), [1, 16]);
  const quant = { quantize: (d: Float32Array, r: number, c: number) => fakeQuantize(d, r, c, tile) };
  const x = activations(256, nIn, 5);
  const rms = new Float64Array(nIn);
  const gramR = new Float64Array(nIn * nIn);
  for (let s = 0; s < 256; s++) {
    for (let i = 0; i < nIn; i++) {
      const xi = x[s * nIn + i]!;
      rms[i]! += (xi * xi) / 256;
      for (let j = 0; j < nIn; j++) gramR[i * nIn + j]! += (xi * x[s * nIn + j]!) / 256;
    }
  }
  return {
    inputs: {
      error: mat(e, out, nIn),
      A: mat(A, nIn, R),
      B: mat(B, R, out),
      aQuant: { ...quant, rankTile: 16 },
      bQuant: { ...quant, rankTile: 1 },
    },
    weights: [{ kind: 'identity' }, { kind: 'diagonal', d: rms }, { kind: 'dense', R: mat(gramR, nIn, nIn) }],
  };
}

test('a layer-sized float32 error takes the float32 product, and its curves match float64 ones', async () => {
  const { inputs, weights: ws } = await layerSizedInputs();
  const fast = await rankCurves(inputs, ws);
  const exact = await rankCurves({ ...inputs, product: 'float64' }, ws);
  for (let wi = 0; wi < ws.length; wi++) {
    assert.equal(fast[wi]!.product, 'float32', `weight ${ws[wi]!.kind}`);
    assert.equal(exact[wi]!.product, 'float64');
    assert.equal(fast[wi]!.base, exact[wi]!.base);
    for (let k = 0; k < fast[wi]!.errSq.length; k++) {
      const got = fast[wi]!.errSq[k]!;
      const want = exact[wi]!.errSq[k]!;
      // The bound allows CURVE_TOLERANCE; the float32 product errs far less in practice.
      assert.ok(Math.abs(got - want) <= 1e-7 * want, `weight ${ws[wi]!.kind}, k=${k}: ${got} vs ${want}`);
    }
  }
});

test('curves that cancel below what a float32 product can vouch for come from a float64 product', async () => {
  // E' = A·B + N with unquantized factors and ‖N‖ ≈ 1e-3·‖E'‖: at rank R the error is ‖N‖², a
  // millionth of ‖E'‖², below what the float32 product's bound vouches for, so the curves must be
  // float64 ones (a float32 product would be off by about a tenth there).
  const nIn = 1024;
  const out = 2048;
  const R = 64;
  const r = rng(21);
  const A = Float64Array.from({ length: nIn * R }, r);
  const B = Float64Array.from({ length: R * out }, () => r() * 0.01);
  const e = new Float32Array(out * nIn);
  const ab = await kernels().matmul(mat(A, nIn, R), mat(B, R, out));
  let rms = 0;
  for (const v of ab.data) rms += (v * v) / ab.data.length;
  const noise = 1e-3 * Math.sqrt(rms);
  for (let i = 0; i < nIn; i++) for (let o = 0; o < out; o++) e[o * nIn + i] = ab.data[i * out + o]! + noise * r();
  const inputs: CurveInputs = { error: mat(e, out, nIn), A: mat(A, nIn, R), B: mat(B, R, out) };
  const ws: MetricWeight[] = [{ kind: 'identity' }];
  const [c] = await rankCurves(inputs, ws);
  const [ref] = await rankCurves({ ...inputs, product: 'float64' }, ws);
  assert.equal(c!.product, 'float64');
  assert.deepEqual(c!.errSq, ref!.errSq);
  const rel = c!.errSq[R]! / c!.base;
  assert.ok(rel > 1e-8 && rel < 1e-5, `rank-${R} error ${c!.errSq[R]} of ${c!.base}`);
});

test('the float32 product of blocks of E, added up in float64, equals the float64 product to float32 accuracy', async () => {
  const r = rng(5);
  // 3000 rows: blocks of 1024 rows of a 4096-wide E and a ragged last block.
  const out = 3000;
  const nIn = 4096;
  const x = mat(Float64Array.from({ length: 7 * out }, r), 7, out);
  const e = mat(Float32Array.from({ length: out * nIn }, r), out, nIn);
  const f32 = await leftProduct(x, e, undefined, 'float32');
  const f64 = await leftProduct(x, e, undefined, 'float64');
  let worst = 0;
  for (let j = 0; j < 7; j++) {
    let xn = 0;
    for (let o = 0; o < out; o++) xn += x.data[j * out + o]! ** 2;
    for (let i = 0; i < nIn; i++) {
      let en = 0;
      for (let o = 0; o < out; o += 1) en += e.data[o * nIn + i]! ** 2;
      worst = Math.max(worst, Math.abs(f32.data[j * nIn + i]! - f64.data[j * nIn + i]!) / Math.sqrt(xn * en));
      if (i > 64) break;
    }
  }
  // The product's error model (rankCurves.ts): |error| ≤ κ·u·‖xⱼ‖·‖E[:, i]‖ with κ = 16.
  assert.ok(worst <= 16 * 2 ** -24, `worst error ${worst} of ‖x‖·‖e‖`);
  assert.ok(worst > 0, 'the float32 product rounds');
});
