/**
 * An export running in a worker leaves no temporary file when the extension cancels it, nor when
 * the worker is terminated in mid-write (the window closing disposes the pool).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerPool } from '../../../src/worker/pool';
import { isQuantLensError } from '../../../src/engine/errors';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { workerScript } from '../../helpers/workerBundle';
import { rng } from '../methods/helpers';

const script = workerScript();

/** Enough layers that the export spends a while writing its temporary file. */
function checkpoint(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ql-worker-tmp-'));
  const file = join(dir, 'model.safetensors');
  const r = rng(3);
  const n = 256;
  writeSafetensors(
    file,
    Array.from({ length: 12 }, (_, i) =>
      f32Tensor(
        `model.layers.${i}.mlp.up_proj.weight`,
        [n, n],
        Array.from({ length: n * n }, () => r()),
      ),
    ),
  );
  return { dir, file };
}

async function untilTemporaryAppears(dir: string): Promise<string> {
  for (let i = 0; i < 2000; i++) {
    const t = readdirSync(dir).find((n) => n.includes('.partial-'));
    if (t) return t;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('the export never started writing');
}

function exportParams(file: string, out: string) {
  return {
    checkpoint: file,
    settings: {
      method: 'lqer' as const,
      weightFormat: 'mxint4',
      factorFormat: 'mxint8',
      factorTiling: 'last-dim' as const,
    },
    rank: 32,
    dtype: 'F32' as const,
    out,
  };
}

test('a cancelled export removes its temporary file', async () => {
  const { dir, file } = checkpoint();
  const pool = new WorkerPool({ script, cancelGraceMs: 5000 });
  try {
    const controller = new AbortController();
    const job = pool.call('exportCheckpoint', exportParams(file, join(dir, 'q.safetensors')), {
      signal: controller.signal,
    });
    await untilTemporaryAppears(dir);
    controller.abort();
    await assert.rejects(job, (e: unknown) => isQuantLensError(e) && e.code === 'cancelled');
    // The worker winds down on its own (a long grace), removing its file as the writer stops.
    for (let i = 0; i < 400 && readdirSync(dir).length > 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  } finally {
    await pool.dispose();
  }
});

test('a worker terminated in mid-write (the window closing) leaves no temporary file', async () => {
  const { dir, file } = checkpoint();
  const pool = new WorkerPool({ script });
  const job = pool.call('exportCheckpoint', exportParams(file, join(dir, 'q.safetensors')));
  job.catch(() => undefined);
  await untilTemporaryAppears(dir);
  await pool.dispose();
  await assert.rejects(job, (e: unknown) => isQuantLensError(e) && e.code === 'cancelled');
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
});

test('the worker refuses an export over the checkpoint it reads', async () => {
  const { dir, file } = checkpoint();
  const pool = new WorkerPool({ script });
  try {
    await assert.rejects(
      pool.call('exportCheckpoint', { ...exportParams(file, file), force: true }),
      (e: unknown) => isQuantLensError(e) && e.code === 'bad-argument' && /is the checkpoint/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  } finally {
    await pool.dispose();
  }
});
