import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerPool } from '../../../src/worker/pool';
import { QuantLensError } from '../../../src/engine/errors';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { workerScript } from '../../helpers/workerBundle';

const script = workerScript();

test('the worker opens a safetensors checkpoint and lists its tensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-pool-'));
  const file = join(dir, 'model.safetensors');
  writeSafetensors(file, [
    f32Tensor('model.layers.0.self_attn.q_proj.weight', [4, 3], new Float32Array(12).fill(1)),
    f32Tensor('model.norm.weight', [3], [1, 1, 1]),
  ]);
  const pool = new WorkerPool({ script });
  try {
    const summary = await pool.call('openCheckpoint', { path: file });
    assert.equal(summary.format, 'safetensors');
    assert.deepEqual(
      summary.tensors.map((t) => [t.name, t.dtype, t.shape]),
      [
        ['model.layers.0.self_attn.q_proj.weight', 'F32', [4, 3]],
        ['model.norm.weight', 'F32', [3]],
      ],
    );
    assert.equal(summary.parameterCount, 15);
    assert.deepEqual(
      summary.linearLayers.map((l) => [l.name, l.shape, l.block, l.role]),
      [['model.layers.0.self_attn.q_proj.weight', [4, 3], 0, 'q_proj']],
    );
  } finally {
    await pool.dispose();
  }
});

test('worker errors arrive as typed errors naming the file', async () => {
  const pool = new WorkerPool({ script });
  try {
    await assert.rejects(
      () => pool.call('openCheckpoint', { path: '/nonexistent/model.safetensors' }),
      (e: unknown) =>
        e instanceof QuantLensError && e.code === 'not-found' && e.file === '/nonexistent/model.safetensors',
    );
  } finally {
    await pool.dispose();
  }
});

test('cancelling a job rejects it at once and the pool keeps working', async () => {
  // A layer large enough that its analysis (both full spectra) runs for seconds on any machine.
  const dir = mkdtempSync(join(tmpdir(), 'ql-pool-'));
  const file = join(dir, 'model.safetensors');
  const n = 2048;
  const values = new Float32Array(n * n);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 0.618) * 0.02;
  const layer = 'model.layers.0.mlp.down_proj.weight';
  writeSafetensors(file, [f32Tensor(layer, [n, n], values)]);
  const pool = new WorkerPool({ script, cancelGraceMs: 50 });
  try {
    const controller = new AbortController();
    let progressed = 0;
    let firstProgress!: () => void;
    const started = new Promise<void>((r) => (firstProgress = r));
    const job = pool.call(
      'analyzeLayer',
      {
        checkpoint: file,
        layer,
        settings: {
          method: 'lqer',
          weightFormat: 'mxint4',
          factorFormat: 'mxint8',
          factorTiling: 'last-dim',
          maxRank: 64,
        },
      },
      {
        signal: controller.signal,
        onProgress: () => {
          progressed++;
          firstProgress();
        },
      },
    );
    await started; // the job is running in the worker, whatever the machine's load
    const t0 = performance.now();
    controller.abort();
    await assert.rejects(job, (e: unknown) => e instanceof QuantLensError && e.code === 'cancelled');
    assert.ok(performance.now() - t0 < 100, 'cancellation took effect within 100 ms');
    assert.ok(progressed > 0, 'progress events arrived before cancellation');
    const after = await pool.call('openCheckpoint', { path: file });
    assert.equal(after.linearLayers.length, 1, 'the pool answers the next job');
  } finally {
    await pool.dispose();
  }
});
