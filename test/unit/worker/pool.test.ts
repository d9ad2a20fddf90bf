import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerPool } from '../../../src/worker/pool';
import { QuantLensError } from '../../../src/engine/errors';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { workerScript } from '../../helpers/workerBundle';
import { writeOutlierStats } from '../../helpers/outlierStats';
import { rng } from '../methods/helpers';

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

test(
  'analyses called with shareWorker run two to a worker, each with the result it gets alone; a cancelled one leaves its partner to finish',
  { skip: availableParallelism() < 2 ? 'needs a second core for the helper thread' : false },
  async () => {
    // From 512 wide the spectra take the float32 routes; with another analysis waiting, the scaled
    // spectrum's band goes to the worker's helper thread, and the next layer takes the turn.
    const layers = [
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [640, 576] },
      { name: 'model.layers.0.mlp.down_proj.weight', shape: [576, 640] },
    ];
    const dir = mkdtempSync(join(tmpdir(), 'ql-pool-'));
    const file = join(dir, 'model.safetensors');
    const r = rng(5);
    writeSafetensors(
      file,
      layers.map((l) =>
        f32Tensor(
          l.name,
          l.shape,
          Float32Array.from({ length: l.shape[0]! * l.shape[1]! }, () => r() * 0.05),
        ),
      ),
    );
    const stats = join(dir, 'stats.safetensors');
    await writeOutlierStats(stats, layers, { tokens: 16, outliers: 6, big: 40, random: r });
    const settings = {
      method: 'l2qer',
      weightFormat: 'mxint4',
      factorFormat: 'mxint8',
      factorTiling: 'last-dim',
      maxRank: 32,
    } as const;
    const pool = new WorkerPool({ script, size: 1, cancelGraceMs: 1 });
    const started = new Map<string, number>();
    const ended = new Map<string, number>();
    const analyse = (layer: string, shareWorker: boolean, signal?: AbortSignal) =>
      pool
        .call(
          'analyzeLayer',
          { checkpoint: file, layer, settings, calibration: stats },
          {
            shareWorker,
            signal,
            onProgress: () => {
              if (!started.has(layer)) started.set(layer, performance.now());
            },
          },
        )
        .then((a) => {
          ended.set(layer, performance.now());
          const { timings: _t, ...rest } = a;
          return rest;
        });
    try {
      const [a, b] = layers.map((l) => l.name) as [string, string];
      const aloneA = await analyse(a, false);
      const aloneB = await analyse(b, false);

      const plain = [analyse(a, false), analyse(b, false)];
      assert.equal(pool.running, 1, 'without shareWorker the second waits for the worker');
      await Promise.all(plain);

      started.clear();
      ended.clear();
      const shared = [analyse(a, true), analyse(b, true)];
      assert.equal(pool.running, 2, 'with shareWorker both run on the one worker');
      const [gotA, gotB] = await Promise.all(shared);
      assert.deepEqual(gotA, aloneA);
      assert.deepEqual(gotB, aloneB);
      assert.ok(started.get(b)! < ended.get(a)!, 'the second began before the first ended');

      // Cancelled past its grace the worker is replaced; the partner starts again on the new one.
      const controller = new AbortController();
      let running!: () => void;
      const first = new Promise<void>((resolve) => (running = resolve));
      const cancelled = pool.call(
        'analyzeLayer',
        { checkpoint: file, layer: a, settings, calibration: stats },
        { shareWorker: true, signal: controller.signal, onProgress: () => running() },
      );
      const partner = analyse(b, true);
      await first;
      controller.abort();
      await assert.rejects(cancelled, (e: unknown) => e instanceof QuantLensError && e.code === 'cancelled');
      assert.deepEqual(await partner, aloneB, 'the partner finished with its own result');
      assert.equal(pool.pending, 0);
    } finally {
      await pool.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
