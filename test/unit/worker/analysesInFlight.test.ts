import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { PIPELINE_MAX_WEIGHTS, analysesInFlight } from '../../../src/worker/pipelining';

test("two layers in flight on one thread (the CLI's loop, the extension's Analyze All) only where a second core can help and the pair stays small", () => {
  const small = [{ shape: [5632, 2048] }, { shape: [256, 2048] }];
  const big = [...small, { shape: [28672, 8192] }];
  assert.equal(analysesInFlight(4, big), 4, '--jobs n: one per worker thread, whatever the sizes');
  assert.equal(analysesInFlight(1, big), 1, 'a layer past the limit would hold two of its size at once');
  assert.equal(analysesInFlight(1, [{ shape: [PIPELINE_MAX_WEIGHTS, 1] }]), availableParallelism() >= 2 ? 2 : 1);
  assert.equal(analysesInFlight(1, [{ shape: [PIPELINE_MAX_WEIGHTS + 1, 1] }]), 1);
  assert.equal(analysesInFlight(1, small), availableParallelism() >= 2 ? 2 : 1);
});
