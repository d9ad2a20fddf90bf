/**
 * The guard that keeps the pool from terminating a worker inside an onnxruntime call (which aborts
 * the process): calls are counted while they run, and none starts once the worker is retired.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel, OnnxType } from '../../../src/engine/onnx/builder';
import { isQuantLensError } from '../../../src/engine/errors';
import {
  NATIVE_STATE_BYTES,
  nativeCallsDone,
  ort,
  retireNativeCalls,
  shareNativeCallState,
} from '../../../src/engine/ort';

const model = buildModel({
  name: 'matmul',
  nodes: [{ op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }],
  inputs: [
    { name: 'A', elemType: OnnxType.FLOAT, dims: ['n', 'n'] },
    { name: 'B', elemType: OnnxType.FLOAT, dims: ['n', 'n'] },
  ],
  outputs: [{ name: 'Y', elemType: OnnxType.FLOAT, dims: ['n', 'n'] }],
});

test('a running session call is counted until it returns, and none starts after retirement', async () => {
  const buffer = new SharedArrayBuffer(NATIVE_STATE_BYTES);
  const shared = new Int32Array(buffer);
  shareNativeCallState(buffer);
  const O = ort();
  const session = await O.InferenceSession.create(model);
  assert.ok(nativeCallsDone(shared), 'nothing in flight once create has returned');

  const n = 384;
  const a = new O.Tensor('float32', new Float32Array(n * n).fill(1), [n, n]);
  const run = session.run({ A: a, B: a });
  assert.equal(retireNativeCalls(shared), false, 'the pool must wait: a run is in flight');
  const out = await run;
  assert.equal((out.Y!.data as Float32Array)[0], n);
  assert.ok(nativeCallsDone(shared), 'the run has returned');

  await assert.rejects(
    session.run({ A: a, B: a }),
    (e: unknown) => isQuantLensError(e) && e.code === 'cancelled',
    'a retired worker starts no new native call',
  );
  assert.ok(nativeCallsDone(shared));
  shareNativeCallState(new SharedArrayBuffer(NATIVE_STATE_BYTES));
  await session.release();
});

test('the eigenvalue helper thread counts its native calls in its starter’s state, so retiring the starter stops it too', async () => {
  const { EigenHelper } = await import('../../../src/worker/eigenHelperClient');
  const buffer = new SharedArrayBuffer(NATIVE_STATE_BYTES);
  const shared = new Int32Array(buffer);
  shareNativeCallState(buffer);
  const helper = new EigenHelper();
  try {
    const n = 1200;
    const a = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = Math.sin(i * 7 + j * 3);
    // Seen from this thread: the helper's onnxruntime calls show in the shared count.
    let seen = false;
    const job = helper.eigenvalues(a, n);
    const watch = setInterval(() => {
      if (!nativeCallsDone(shared)) seen = true;
    }, 0);
    await job;
    clearInterval(watch);
    assert.ok(seen, 'a helper call was in flight at some point');
    assert.ok(nativeCallsDone(shared));
    // Retired: the helper's next native call refuses to start and its job fails as cancelled.
    retireNativeCalls(shared);
    await assert.rejects(helper.eigenvalues(a, n), (e: unknown) => isQuantLensError(e) && e.code === 'cancelled');
    assert.ok(nativeCallsDone(shared));
  } finally {
    shareNativeCallState(new SharedArrayBuffer(NATIVE_STATE_BYTES));
    await helper.dispose();
  }
});
