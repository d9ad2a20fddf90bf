/**
 * KL divergence of a quantized language model from the float one (eval --task kld): the
 * accumulator against closed forms, the evaluator's cached and recomputed float paths against each
 * other, and the whole figure against an independent transformers computation on the tiny Llama.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { pythonMissing, runPythonJson } from '../../helpers/python';
import { openOnnxLinearModel, selectSites } from '../../../src/engine/calibration/linearSites';
import { Evaluator } from '../../../src/engine/evaluation/evaluate';
import { KldAccumulator, percentile } from '../../../src/engine/evaluation/metrics';
import { quantizedGraphEdits } from '../../../src/engine/evaluation/quantizedGraph';
import { quantizeModelAtRanks } from '../../../src/engine/evaluation/sweep';

const TINY = join(import.meta.dirname, '../../fixtures/models/tiny-llama');

test('KldAccumulator: KL of known distributions, same-top rate, both perplexities, percentiles', () => {
  const acc = new KldAccumulator();
  // p = softmax(log [0.5, 0.25, 0.25]), q = softmax(log [0.25, 0.5, 0.25]) shifted by a constant.
  const f = Float32Array.from([0.5, 0.25, 0.25], Math.log);
  const q = Float32Array.from([0.25, 0.5, 0.25], (v) => Math.log(v) + 3);
  acc.add(f, q, 1);
  acc.add(f, f, 0);
  const s = acc.summary();
  const kl = 0.5 * Math.log(2) + 0.25 * Math.log(0.5);
  assert.ok(Math.abs(s.mean - kl / 2) < 1e-7, `${s.mean}`);
  assert.ok(Math.abs(s.max - kl) < 1e-7);
  assert.ok(Math.abs(s.median - kl / 2) < 1e-7, 'median of two is their mean');
  assert.equal(s.sameTop, 0.5, 'argmax 0 vs 1, then equal');
  assert.ok(Math.abs(s.perplexity - Math.exp(-(Math.log(0.5) + Math.log(0.5)) / 2)) < 1e-6);
  assert.ok(Math.abs(s.floatPerplexity - Math.exp(-(Math.log(0.25) + Math.log(0.5)) / 2)) < 1e-6);
  assert.equal(s.tokens, 2);
  const sorted = Float64Array.from({ length: 1001 }, (_, i) => i);
  assert.equal(percentile(sorted, 0.99), 990);
  assert.equal(percentile(sorted, 0.999), 999);
  assert.equal(percentile(Float64Array.of(0, 10), 0.25), 2.5, 'linear between order statistics');
});

test('eval kld: the float model against itself is 0; cached and recomputed float logits give the same figures', async () => {
  const m = await openOnnxLinearModel(join(TINY, 'model.onnx'));
  const options = {
    data: join(TINY, 'eval.txt'),
    tokenizer: join(TINY, 'tokenizer.json'),
    batchSize: 4,
    maxSamples: 12,
    task: 'kld' as const,
  };
  const cached = Evaluator.open(m, options);
  const recomputed = Evaluator.open(m, { ...options, kldCacheBytes: 0 });
  try {
    const sites = selectSites(m.sites, {}, m.model.path);
    const q = await quantizeModelAtRanks(
      m,
      sites,
      null,
      { method: 'lqer', weightFormat: 'mxint3', factorFormat: 'mxint8', factorTiling: 'last-dim' },
      [4],
    );
    const edits = quantizedGraphEdits(
      q.map((x) => ({ site: x.site, layer: x.layers[0]! })),
      m.opset,
    );
    const float = await cached.evaluate(null);
    assert.equal(float.task, 'kld');
    assert.equal(float.kld!.mean, 0);
    assert.equal(float.kld!.sameTop, 1);
    assert.equal(float.kld!.tokens, 12 * 127);
    const a = await cached.evaluate(edits);
    const b = await recomputed.evaluate(edits);
    assert.ok(a.kld!.mean > 1e-3, `MXINT3 moves the distribution: ${a.kld!.mean}`);
    assert.deepEqual(a.kld, b.kld);
    assert.ok(a.kld!.p999 >= a.kld!.p99 && a.kld!.p99 >= a.kld!.median && a.kld!.max >= a.kld!.p999);
    assert.ok(Math.abs(a.kld!.floatPerplexity - float.kld!.perplexity) < 1e-9);
  } finally {
    await cached.dispose();
    await recomputed.dispose();
    await m.close();
  }
});

test(
  'eval --task kld equals an independent transformers computation on the tiny Llama (LQER rank 8, MXINT3)',
  { skip: pythonMissing(['torch', 'transformers', 'tokenizers', 'safetensors']) ?? false },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ql-kld-'));
    const how = ['--method', 'lqer', '--format', 'mxint3', '--rank', '8'];
    const ql = join(dir, 'q.safetensors');
    const exp = spawnSync(
      process.execPath,
      [cliScript(), 'export', join(TINY, 'model.safetensors'), ...how, '--out', ql],
      { encoding: 'utf8' },
    );
    assert.equal(exp.status, 0, exp.stderr);
    const ev = spawnSync(
      process.execPath,
      [
        cliScript(),
        'eval',
        join(TINY, 'model.onnx'),
        '--data',
        join(TINY, 'eval.txt'),
        '--tokenizer',
        join(TINY, 'tokenizer.json'),
        '--task',
        'kld',
        '--max-samples',
        '96',
        '--batch-size',
        '16',
        '--json',
        ...how,
      ],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    assert.equal(ev.status, 0, ev.stderr);
    const ours = (JSON.parse(ev.stdout) as { rows: { result: { kld: Record<string, number> } }[] }).rows[0]!.result.kld;
    const ref = runPythonJson<Record<string, number>[]>('check_kld.py', [
      '--source',
      TINY,
      '--ql',
      ql,
      '--text',
      join(TINY, 'eval.txt'),
      '--max-windows',
      '96',
    ])[0]!;
    process.stderr.write(`  quant-lens ${JSON.stringify(ours)}\n  torch      ${JSON.stringify(ref)}\n`);
    assert.equal(ours['tokens'], ref['tokens']);
    // onnxruntime and torch differ in float32 rounding (logits within ~1e-5), nothing else.
    for (const [a, b] of [
      ['mean', 'mean'],
      ['median', 'median'],
      ['p99', 'p99'],
      ['p999', 'p999'],
      ['perplexity', 'ppl'],
      ['floatPerplexity', 'ppl_float'],
    ] as const) {
      assert.ok(Math.abs(ours[a]! / ref[b]! - 1) < 1e-4, `${a}: ${ours[a]} vs ${ref[b]}`);
    }
    assert.ok(
      Math.abs(ours['sameTop']! - ref['same_top']!) < 1e-3,
      `same top ${ours['sameTop']} vs ${ref['same_top']}`,
    );
  },
);
