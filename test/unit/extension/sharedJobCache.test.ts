import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedJobCache } from '../../../src/extension/services/sharedJobCache';
import { isQuantLensError } from '../../../src/engine/errors';

/** A job the test finishes by hand, recording whether it was cancelled. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('a finished result is answered from the cache without starting again', async () => {
  const cache = new SharedJobCache<number, number>(4);
  let starts = 0;
  const start = async () => {
    starts++;
    return 42;
  };
  assert.equal(await cache.get('k', start), 42);
  assert.equal(await cache.get('k', start), 42);
  assert.equal(starts, 1);
  assert.equal(cache.peek('k'), 42);
});

test('a second request joins the running job and both get its progress and result', async () => {
  const cache = new SharedJobCache<string, number>(4);
  const job = deferred<string>();
  let report: ((p: number) => void) | undefined;
  let starts = 0;
  const start = (_signal: AbortSignal, onProgress: (p: number) => void) => {
    starts++;
    report = onProgress;
    return job.promise;
  };
  const seenA: number[] = [];
  const seenB: number[] = [];
  const a = cache.get('k', start, { onProgress: (p) => seenA.push(p) });
  const b = cache.get('k', start, { onProgress: (p) => seenB.push(p) });
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(starts, 1);
  report!(0.5);
  job.resolve('done');
  assert.deepEqual(await Promise.all([a, b]), ['done', 'done']);
  assert.deepEqual(seenA, [0.5]);
  assert.deepEqual(seenB, [0.5]);
});

test('one requester cancelling leaves the job running for the other', async () => {
  const cache = new SharedJobCache<string>(4);
  const job = deferred<string>();
  let jobSignal: AbortSignal | undefined;
  const start = (signal: AbortSignal) => {
    jobSignal = signal;
    return job.promise;
  };
  const ca = new AbortController();
  const a = cache.get('k', start, { signal: ca.signal });
  const b = cache.get('k', start);
  ca.abort();
  await assert.rejects(a, (e: unknown) => isQuantLensError(e) && e.code === 'cancelled');
  await Promise.resolve();
  assert.equal(jobSignal!.aborted, false);
  job.resolve('kept');
  assert.equal(await b, 'kept');
  assert.equal(cache.peek('k'), 'kept');
});

test('the job is cancelled when its last requester cancels, and nothing is cached', async () => {
  const cache = new SharedJobCache<string>(4);
  const job = deferred<string>();
  let jobSignal: AbortSignal | undefined;
  const c = new AbortController();
  const p = cache.get(
    'k',
    (signal) => {
      jobSignal = signal;
      return job.promise;
    },
    { signal: c.signal },
  );
  await Promise.resolve();
  c.abort();
  await assert.rejects(p);
  assert.equal(jobSignal!.aborted, true);
  assert.equal(cache.isRunning('k'), false);
  job.resolve('late');
  await Promise.resolve();
  assert.equal(cache.peek('k'), undefined);
});

test('failures reach every requester and are not cached', async () => {
  const cache = new SharedJobCache<string>(4);
  let starts = 0;
  const fail = async () => {
    starts++;
    throw new Error('boom');
  };
  await assert.rejects(cache.get('k', fail), /boom/);
  await assert.rejects(cache.get('k', fail), /boom/);
  assert.equal(starts, 2);
});

test('least recently used results are dropped beyond the capacity, and stores are announced', async () => {
  const stored: string[] = [];
  const cache = new SharedJobCache<number>(2, (key) => stored.push(key));
  await cache.get('a', async () => 1);
  await cache.get('b', async () => 2);
  await cache.get('a', async () => -1); // touch a
  await cache.get('c', async () => 3);
  assert.equal(cache.peek('b'), undefined);
  assert.equal(cache.peek('a'), 1);
  assert.equal(cache.peek('c'), 3);
  assert.deepEqual(stored, ['a', 'b', 'c']);
});

test('an already aborted signal is refused without starting', async () => {
  const cache = new SharedJobCache<number>(2);
  const c = new AbortController();
  c.abort();
  let started = false;
  await assert.rejects(
    cache.get(
      'k',
      async () => {
        started = true;
        return 1;
      },
      { signal: c.signal },
    ),
  );
  assert.equal(started, false);
});

test('a result put from the store answers later requests and is announced; a running job keeps its own', async () => {
  const announced: [string, number][] = [];
  const cache = new SharedJobCache<number, number>(4, (k, v) => announced.push([k, v]));
  cache.put('stored', 7);
  let starts = 0;
  assert.equal(
    await cache.get('stored', async () => {
      starts++;
      return 1;
    }),
    7,
  );
  assert.equal(starts, 0);
  const job = deferred<number>();
  const running = cache.get('busy', () => job.promise);
  cache.put('busy', 8);
  job.resolve(9);
  assert.equal(await running, 9);
  assert.equal(cache.peek('busy'), 9);
  assert.deepEqual(announced, [
    ['stored', 7],
    ['busy', 9],
  ]);
});
