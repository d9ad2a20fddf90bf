import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedWorkspace } from '../../../src/engine/linalg';
import { ThreadTurns } from '../../../src/worker/threadTurns';

const tick = () => new Promise<void>((r) => setImmediate(r));

test('thread turns: one holder at a time, the thread passed on only while away, taken back before away returns', async () => {
  const turns = new ThreadTurns();
  const log: string[] = [];
  const first = await turns.take();
  assert.equal(first.contended, false);
  let secondHeld = false;
  const second = turns.take().then((t) => {
    secondHeld = true;
    log.push('second runs');
    return t;
  });
  await tick();
  assert.equal(secondHeld, false, 'the second waits while the first holds the thread');
  assert.equal(first.contended, true);
  assert.notEqual(first.workspace, undefined);

  let release!: () => void;
  const helperJob = new Promise<string>((r) => (release = () => r('values')));
  const away = first.away(helperJob).then((v) => {
    log.push('first back');
    return v;
  });
  const t2 = await second;
  assert.notEqual(t2.workspace, first.workspace, 'analyses side by side never share scratch memory');
  release();
  await tick();
  await tick();
  assert.deepEqual(log, ['second runs'], 'the first does not come back while the second holds the thread');
  t2.end();
  assert.equal(await away, 'values');
  assert.deepEqual(log, ['second runs', 'first back']);
  first.end();

  // A rejected job still hands the thread back before the error reaches the caller.
  const a = await turns.take();
  const b = turns.take();
  const failed = a.away(Promise.reject(new Error('helper failed')));
  const tb = await b;
  let settled = false;
  failed.catch(() => (settled = true));
  await tick();
  assert.equal(settled, false);
  tb.end();
  await assert.rejects(failed, /helper failed/);
  a.end();

  // A caller cancelled while it waits leaves the queue; the next in line gets the thread.
  const holder = await turns.take();
  const controller = new AbortController();
  const cancelled = turns.take(controller.signal);
  const patient = turns.take();
  controller.abort();
  await assert.rejects(cancelled, (e: Error & { code?: string }) => e.code === 'cancelled');
  assert.equal(holder.contended, true, 'the patient caller still waits');
  holder.end();
  (await patient).end();
  await assert.rejects(turns.take(AbortSignal.abort()), /cancelled/);

  // Alone again: the thread's shared workspace, and nothing waits.
  const c = await turns.take();
  assert.equal(c.workspace, sharedWorkspace());
  assert.equal(c.contended, false);
  c.end();
  c.end();
  await assert.rejects(c.away(Promise.resolve(1)), /after end/);
});
