import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtaEstimator } from '../../../src/extension/services/eta';
import { formatDuration } from '../../../src/shared/formatting';

test('no estimate before the first job, then the pace so far times what is left', () => {
  let now = 1000;
  const eta = new EtaEstimator(10, () => now);
  assert.equal(eta.etaMs(), null);
  now += 4000;
  eta.tick();
  eta.tick();
  assert.equal(eta.done, 2);
  assert.equal(eta.etaMs(), 16000);
  for (let i = 0; i < 20; i++) eta.tick();
  assert.equal(eta.done, 10);
  assert.equal(eta.etaMs(), 0);
});

test('durations read naturally', () => {
  assert.equal(formatDuration(800), '0.8 s');
  assert.equal(formatDuration(42_000), '42 s');
  assert.equal(formatDuration(65_000), '1 min 5 s');
  assert.equal(formatDuration(3_725_000), '1 h 2 min');
  assert.equal(formatDuration(-1), '—');
});
