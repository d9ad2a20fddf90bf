/**
 * Layers read into reused storage (ReadWeightOptions.into, weightBuffers.ts): the values are the
 * ones a fresh read gives, whatever the buffer held before, and the lease never hands one buffer
 * to two analyses at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { WeightBuffers, withWeightBuffer, sharedWeightBuffers } from '../../../src/engine/readers/weightBuffers';
import { bf16Tensor, f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { mulberry32 } from '../../../src/engine/random';
import { fixture, tempDir } from './helpers';

function values(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() - 0.5);
}

test('a weight read into a used buffer has the values of a fresh read, for raw, decoded and transposed layers', async () => {
  const dir = tempDir();
  const path = join(dir, 'model.safetensors');
  // Big enough for several chunks and read lanes (8 MB each): 1536×1536 float32 is 9.4 MB.
  const q = 'model.layers.0.self_attn.q_proj.weight';
  const up = 'model.layers.0.mlp.up_proj.weight';
  writeSafetensors(path, [
    f32Tensor(q, [1536, 1536], values(1536 * 1536, 1)),
    bf16Tensor(up, [96, 64], values(96 * 64, 2)),
  ]);
  const gpt2 = await openCheckpoint(fixture('gpt2/model.safetensors'));
  const ckpt = await openCheckpoint(path);
  try {
    const cases = [
      { c: ckpt, name: q },
      { c: ckpt, name: up },
      { c: gpt2, name: 'transformer.h.0.attn.c_attn.weight' },
    ];
    for (const { c, name } of cases) {
      const fresh = await c.readWeight(name);
      // Storage a bigger layer left full of other values, with room to spare.
      const into = new Float32Array(fresh.data.length + 77).fill(12345);
      const rows: number[] = [];
      const w = await c.readWeight(name, undefined, { into, onRows: (_d, r) => rows.push(r) });
      assert.equal(w.data.buffer, into.buffer, `${name}: decoded in the given storage`);
      assert.equal(w.data.length, fresh.data.length, name);
      assert.deepEqual(w.data, fresh.data, name);
      assert.deepEqual(w.nonFinite, fresh.nonFinite, name);
      assert.deepEqual([w.out, w.in], [fresh.out, fresh.in], name);
      if (rows.length > 0) assert.equal(rows.at(-1), w.out, `${name}: every row reported`);
      // Storage too small is left alone: a new array, the same values.
      const small = new Float32Array(fresh.data.length - 1).fill(7);
      const w2 = await c.readWeight(name, undefined, { into: small });
      assert.notEqual(w2.data.buffer, small.buffer, name);
      assert.deepEqual(w2.data, fresh.data, name);
      assert.ok(
        small.every((v) => v === 7),
        `${name}: a buffer that is too small is not written`,
      );
    }
  } finally {
    await ckpt.close();
    await gpt2.close();
  }
});

test('weight buffers: the spare is handed to the next layer that fits, never to two leases, and dropped when idle', async () => {
  const pool = new WeightBuffers(50);
  const a = pool.acquire(1000);
  // A second lease while the first is out gets its own storage.
  const b = pool.acquire(500);
  assert.notEqual(a.buffer, b.buffer);
  pool.release(b);
  pool.release(a);
  assert.equal(pool.held, 1000, 'the larger of two spares is kept');
  const c = pool.acquire(800);
  assert.equal(c.buffer, a.buffer, 'a smaller layer reuses the spare');
  assert.equal(pool.held, 0, 'a leased buffer is no longer spare');
  const d = pool.acquire(800);
  assert.notEqual(d.buffer, c.buffer);
  pool.release(c);
  const e = pool.acquire(2000);
  assert.ok(e.length >= 2000 && e.buffer !== c.buffer, 'a spare that is too small is not used');
  pool.release(e);
  assert.equal(pool.held, e.length);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(pool.held, 0, 'an idle spare is dropped');
});

test('withWeightBuffer returns the buffer to the pool when the work fails', async () => {
  const pool = sharedWeightBuffers();
  let leased: Float32Array | undefined;
  await assert.rejects(
    withWeightBuffer(async (lease) => {
      leased = lease(4096);
      throw new Error('boom');
    }),
    /boom/,
  );
  const again = pool.acquire(4096);
  assert.equal(again.buffer, leased!.buffer);
  pool.release(again);
});
