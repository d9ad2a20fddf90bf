/** The worker's `calibrate` method: the real worker bundle, progress events, cancellation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerPool } from '../../../src/worker/pool';
import { StatsFile } from '../../../src/engine/calibration/statsFile';
import { isQuantLensError } from '../../../src/engine/errors';
import { workerScript } from '../../helpers/workerBundle';
import { lmModel } from '../evaluation/smallGraphs';

const LM = join(import.meta.dirname, '../../fixtures/models/tiny-llama');

test('calibrate in the worker writes the stats file and reports progress per batch', async () => {
  const pool = new WorkerPool({ script: workerScript() });
  try {
    const out = join(mkdtempSync(join(tmpdir(), 'ql-wcal-')), 'stats.safetensors');
    const progress: number[] = [];
    const r = await pool.call(
      'calibrate',
      {
        model: lmModel(512),
        data: join(LM, 'calibration.txt'),
        tokenizer: join(LM, 'tokenizer.json'),
        out,
        seqLen: 16,
        batchSize: 2,
        maxSamples: 8,
        gram: true,
      },
      { onProgress: (p) => progress.push(p.batchesDone) },
    );
    assert.deepEqual([r.layers, r.samples, r.batches], [2, 8, 4]);
    assert.deepEqual(progress, [1, 2, 3, 4]);
    assert.ok(existsSync(out));
    const f = await StatsFile.open(out);
    try {
      assert.ok(f.has('proj', 'act_gram') && f.has('head', 'act_mean_abs'));
      assert.equal(f.info.tokens.proj, 8 * 16);
    } finally {
      await f.close();
    }
  } finally {
    await pool.dispose();
  }
});

test('a cancelled calibration rejects at once with "cancelled"', async () => {
  const pool = new WorkerPool({ script: workerScript() });
  try {
    const controller = new AbortController();
    const out = join(mkdtempSync(join(tmpdir(), 'ql-wcal-')), 'stats.safetensors');
    const call = pool.call(
      'calibrate',
      {
        model: lmModel(512),
        data: join(LM, 'eval.txt'),
        tokenizer: join(LM, 'tokenizer.json'),
        out,
        seqLen: 64,
        batchSize: 1,
      },
      { signal: controller.signal, onProgress: () => controller.abort() },
    );
    await assert.rejects(call, (e: unknown) => isQuantLensError(e) && e.code === 'cancelled');
  } finally {
    await pool.dispose();
  }
});
