import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { stageTimer } from '../../../src/engine/methods/stageTimer';

test('stage times are exclusive: a stage timed inside another is counted once, and the stages add up to the wall time', async () => {
  const { timings, time } = stageTimer();
  const t0 = performance.now();
  await time('quantize', () => sleep(40));
  // A spectrum stage that forms its Gram (a stage of its own) before reducing it.
  await time('spectrum', async () => {
    await time('gram', async () => {
      await sleep(60);
    });
    await sleep(40);
  });
  await time('spectrum', () => sleep(40));
  const wall = performance.now() - t0;
  const sum = Object.values(timings).reduce((a, b) => a + b, 0);
  assert.ok(sum <= wall + 1, `stages add up to ${sum} ms, more than the ${wall} ms they took`);
  assert.ok(timings.gram! >= 55, `gram ${timings.gram}`);
  // Counting the Gram inside the spectrum as well would give ≥ 140 ms.
  assert.ok(timings.spectrum! >= 75 && timings.spectrum! < 120, `spectrum ${timings.spectrum}`);
});

test('a stage timer checks for cancellation after each stage', async () => {
  const ac = new AbortController();
  const { time } = stageTimer(ac.signal);
  await assert.rejects(
    time('quantize', () => ac.abort()),
    (e: unknown) => e instanceof Error && /cancel/i.test(e.message),
  );
});
