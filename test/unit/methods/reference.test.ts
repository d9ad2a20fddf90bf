/**
 * analyzeLayer against independent numpy references (test/fixtures/scripts/methods_reference.py):
 * W_q and the quantized A/B through the official LQER quantizer, full LAPACK SVDs in float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeLayer, type LayerInput } from '../../../src/engine/methods/analyzeLayer';
import type { MethodName } from '../../../src/engine/methods/methods';

interface CurveRow {
  rank: number;
  weightErrSq: number;
  outputErrSq: number;
  weightErrSqFloatFactors: number;
  outputErrSqFloatFactors: number;
}
interface Reference {
  shape: [number, number];
  weight: number[][];
  tokens: number;
  actMeanAbs: number[];
  actRms: number[];
  actGram: number[][];
  weightSq: number;
  errorSq: number;
  outputSq: number;
  sigmaPlain: number[];
  methods: Record<string, { sigmaScaled: number[]; curves: CurveRow[]; sqrtmOutputErrSqFloatFactors?: number[] }>;
}

const ref = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../fixtures/methods/reference.json'), 'utf8'),
) as Reference;
const [out, nIn] = ref.shape;
const input: LayerInput = {
  name: 'layer.weight',
  data: Float32Array.from(ref.weight.flat()),
  out,
  in: nIn,
  calibration: {
    meanAbs: Float32Array.from(ref.actMeanAbs),
    rms: Float32Array.from(ref.actRms),
    gram: Float64Array.from(ref.actGram.flat()),
    tokens: ref.tokens,
  },
};

function close(got: number, want: number, rel: number, what: string): void {
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-12, `${what}: ${got} vs ${want}`);
}

for (const method of ['lqer', 'l2qer', 'qera-approx', 'qera-exact'] as MethodName[]) {
  test(`${method} matches the numpy reference: spectra, and errors at every rank with MXINT8 and float factors`, async () => {
    const r = ref.methods[method]!;
    const base = { method, weightFormat: 'mxint4', factorTiling: 'last-dim', maxRank: 32 } as const;
    const q = await analyzeLayer(input, { ...base, factorFormat: 'mxint8' });
    const f = await analyzeLayer(input, { ...base, factorFormat: 'fp32' });
    close(q.norms.weightSq, ref.weightSq, 1e-6, 'weight norm');
    close(q.norms.errorSq, ref.errorSq, 1e-6, '‖W − W_q‖² (W_q bit-exact with the official quantizer)');
    close(q.norms.outputSq!, ref.outputSq, 1e-6, 'tr(W R Wᵀ)');
    ref.sigmaPlain.forEach((s, i) => close(q.sigmaPlain[i]!, s, 1e-6, `σ(E)[${i}]`));
    r.sigmaScaled.forEach((s, i) => close(q.sigmaScaled[i]!, s, 1e-5, `σ(scaled)[${i}]`));
    for (const row of r.curves) {
      const k = row.rank;
      close(f.curves.weightErrSq[k]!, row.weightErrSqFloatFactors, 1e-4, `weight error, float A/B, k=${k}`);
      close(f.curves.outputErrSq![k]!, row.outputErrSqFloatFactors, 1e-4, `output error, float A/B, k=${k}`);
      // The randomized SVD runs in float32, so a factor entry can round to a neighbouring MXINT8
      // code now and then; the effect on the error stays far below the error itself.
      close(q.curves.weightErrSq[k]!, row.weightErrSq, 2e-3, `weight error, MXINT8 A/B, k=${k}`);
      close(q.curves.outputErrSq![k]!, row.outputErrSq, 2e-3, `output error, MXINT8 A/B, k=${k}`);
    }
    if (r.sqrtmOutputErrSqFloatFactors) {
      // Cholesky instead of the official sqrtm: the optimum does not depend on the factor F of R.
      r.curves.forEach((row, i) =>
        close(
          f.curves.outputErrSq![row.rank]!,
          r.sqrtmOutputErrSqFloatFactors![i]!,
          1e-4,
          `sqrtm optimum k=${row.rank}`,
        ),
      );
    }
  });
}
