import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivationAccumulator } from '../../../src/engine/calibration/accumulator';
import { StatsFile, writeStatsFile } from '../../../src/engine/calibration/statsFile';
import { statsNameFor } from '../../../src/engine/calibration/statKinds';
import { l2qerScale, qeraApproxScale } from '../../../src/engine/methods/scales';
import { scratchOutput } from '../../helpers/output';

test('act_mean_abs is the max over batches of per-batch mean |x|; rms and gram pool all tokens', () => {
  const acc = new ActivationAccumulator(2, { gram: true });
  // batch 1: two tokens; batch 2: one token
  acc.addBatch(new Float32Array([1, -2, 3, 0]), 2);
  acc.addBatch(new Float32Array([-1, 6]), 1);
  const s = acc.finish();
  assert.equal(s.tokens, 3);
  assert.equal(s.batches, 2);
  // per-batch means: batch1 [2, 1], batch2 [1, 6] → max [2, 6]
  assert.deepEqual([...s.meanAbs], [2, 6]);
  // rms over 3 tokens: sqrt((1+9+1)/3), sqrt((4+0+36)/3)
  assert.ok(Math.abs(s.rms[0]! - Math.sqrt(11 / 3)) < 1e-6);
  assert.ok(Math.abs(s.rms[1]! - Math.sqrt(40 / 3)) < 1e-6);
  // gram = (x1x1ᵀ + x2x2ᵀ + x3x3ᵀ)/3
  const g = [1 + 9 + 1, -2 + 0 - 6, -2 + 0 - 6, 4 + 0 + 36].map((v) => v / 3);
  assert.deepEqual(
    [...s.gram!].map((v) => +v.toFixed(12)),
    g.map((v) => +v.toFixed(12)),
  );
});

test('the reservoir sample keeps at most the requested rows, all of them real rows', () => {
  const acc = new ActivationAccumulator(3, { sampleRows: 4, seed: 3 });
  const rows: number[][] = [];
  for (let b = 0; b < 5; b++) {
    const x = new Float32Array(6);
    for (let t = 0; t < 2; t++) {
      const r = [b * 10 + t, b, t];
      rows.push(r);
      x.set(r, t * 3);
    }
    acc.addBatch(x, 2);
  }
  const s = acc.finish();
  assert.equal(s.samples!.rows, 4);
  for (let i = 0; i < 4; i++) {
    const r = [...s.samples!.data.subarray(i * 3, i * 3 + 3)];
    assert.ok(
      rows.some((x) => x.every((v, j) => v === r[j])),
      `sampled row ${r} is one of the inputs`,
    );
  }
});

test('stats files round-trip and refuse a statistic that does not fit the layer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-stats-'));
  const path = join(dir, 'stats.safetensors');
  const acc = new ActivationAccumulator(3, { gram: true });
  acc.addBatch(new Float32Array([1, 2, 3, 4, 5, 6]), 2);
  await writeStatsFile(await scratchOutput(path), new Map([['layer.weight', acc.finish()]]));
  const f = await StatsFile.open(path);
  try {
    assert.ok(f.has('layer.weight', 'act_mean_abs') && f.has('layer.weight', 'act_gram'));
    assert.equal(f.info.tokens['layer.weight'], 2);
    assert.deepEqual([...(await f.read('layer.weight', 'act_mean_abs', 3))], [2.5, 3.5, 4.5]);
    const g = await f.readGram('layer.weight', 3);
    assert.equal(g[0], (1 + 16) / 2);
    await assert.rejects(() => f.read('layer.weight', 'act_rms', 4), /does not fit a layer with 4 input features/);
    await assert.rejects(
      () => f.read('other.weight', 'act_rms', 3),
      (e: Error) => /has no act_rms/.test(e.message),
    );
  } finally {
    await f.close();
  }
});

test('L²QER scale: clamp at 1e-4, then min·max = 1; QERA-approx replaces non-positive entries', () => {
  const s = l2qerScale([0, 0.5, 2, 1e-6]);
  const clamped = [1e-4, 0.5, 2, 1e-4];
  const norm = Math.sqrt(1e-4 * 2);
  s.forEach((v, i) => assert.ok(Math.abs(v - clamped[i]! / norm) < 1e-12));
  assert.ok(Math.abs(Math.min(...s) * Math.max(...s) - 1) < 1e-12);
  assert.deepEqual([...qeraApproxScale([0.5, 0, -1])], [0.5, 2 ** -23, 2 ** -23]);
});

test('statistics of an ONNX export of a wrapped module pair with the checkpoint names, by whole unique suffixes', () => {
  const names = ['m.model.layers.1.mlp.up_proj.weight', 'm.model.layers.11.mlp.up_proj.weight', 'm.lm_head.weight'];
  assert.equal(statsNameFor(names, 'model.layers.1.mlp.up_proj.weight'), 'm.model.layers.1.mlp.up_proj.weight');
  assert.equal(statsNameFor(names, 'lm_head.weight'), 'm.lm_head.weight');
  // `1.mlp…` is a suffix of both but not a whole-component suffix of the second.
  assert.equal(statsNameFor(names, 'layers.1.mlp.up_proj.weight'), 'm.model.layers.1.mlp.up_proj.weight');
  assert.equal(statsNameFor(names, 'up_proj.weight'), undefined, 'ambiguous: two layers end so');
  assert.equal(statsNameFor(names, 'model.layers.2.mlp.up_proj.weight'), undefined);
  assert.equal(statsNameFor(['a.w', 'w'], 'w'), 'w', 'an exact name wins over suffixes');
  // The other direction: the checkpoint's name is the longer one.
  assert.equal(statsNameFor(['layers.0.fc.weight'], 'transformer.layers.0.fc.weight'), 'layers.0.fc.weight');
});

test('a stats file answers for a checkpoint weight under its own or its wrapped name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-stats-'));
  const path = join(dir, 'stats.safetensors');
  const acc = new ActivationAccumulator(3);
  acc.addBatch(new Float32Array([1, 2, 3, 4, 5, 6]), 2);
  await writeStatsFile(await scratchOutput(path), new Map([['m.model.layers.0.fc.weight', acc.finish()]]));
  const f = await StatsFile.open(path);
  try {
    assert.ok(f.has('model.layers.0.fc.weight', 'act_mean_abs'));
    const c = await f.layerCalibration('model.layers.0.fc.weight', 3);
    assert.deepEqual([...c.meanAbs!], [2.5, 3.5, 4.5]);
    assert.equal(c.tokens, 2);
    assert.ok(!f.has('model.layers.1.fc.weight', 'act_mean_abs'));
  } finally {
    await f.close();
  }
});
