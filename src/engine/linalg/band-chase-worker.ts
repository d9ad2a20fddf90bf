/**
 * Runs the odd sweeps of the bulge chase in a worker thread while the calling thread runs the even
 * ones, on a band in shared memory. The chase is the one long phase that is pure JS, and the
 * second core is idle during it (onnxruntime has nothing to do), so this nearly halves it. The
 * sweeps synchronize step by step through a shared progress array (see band-chase-kernel.ts), so
 * the result is bit-for-bit the sequential one.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createChaseKernel, SWEEP_DONE, type ChaseKernel } from './band-chase-kernel';
import type { StepClock } from './progress';

interface ChaseJob {
  band: SharedArrayBuffer;
  length: number;
  n: number;
  b: number;
  ld: number;
  first: number;
  stride: number;
  progress: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

// The worker evaluates the kernel factory's own source text, so both threads run the same code.
// Transpilers that keep function names wrap declarations in a __name helper, defined here as a
// no-op so that the text runs on its own.
const WORKER_SOURCE = `
var __name = (f) => f;
const { parentPort } = require('node:worker_threads');
const kernel = (${createChaseKernel.toString()})();
parentPort.postMessage({ ready: true });
parentPort.on('message', (job) => {
  let error = null;
  try {
    const a = new Float64Array(job.band, 0, job.length);
    const progress = new Int32Array(job.progress);
    const control = new Int32Array(job.control);
    for (let c = job.first; c < job.n - 2; c += job.stride) {
      if (Atomics.load(control, 0) !== 0) break;
      kernel.sweep(a, job.n, job.b, job.ld, c, progress);
    }
  } catch (e) {
    error = String(e && e.stack || e);
  }
  parentPort.postMessage({ error });
});
`;

let worker: Promise<Worker | undefined> | undefined;
let workerBroken = false;
// One chase at a time may use the helper: a second one would block this thread in a wait for a
// worker that is busy with the first, whose own sweeps on this thread could then never run.
let busy = false;

/** The helper thread, once it has evaluated the kernel; undefined when it cannot be started. */
function chaseWorker(): Promise<Worker | undefined> {
  if (workerBroken) return Promise.resolve(undefined);
  worker ??= new Promise<Worker | undefined>((resolve) => {
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, { eval: true });
    } catch {
      workerBroken = true;
      resolve(undefined);
      return;
    }
    const fail = () => {
      workerBroken = true;
      worker = undefined;
      resolve(undefined);
    };
    w.once('error', fail);
    w.once('message', () => {
      w.off('error', fail);
      w.on('error', () => {
        workerBroken = true;
        worker = undefined;
      });
      w.unref();
      resolve(w);
    });
  });
  return worker;
}

/** Ends the helper thread (it is also unref'd, so it never keeps a process alive). */
export async function disposeChaseWorker(): Promise<void> {
  const w = await worker;
  worker = undefined;
  if (w) await w.terminate();
}

/**
 * Band width from which the step-by-step hand-over between the threads pays: with b = 16 two
 * threads chase a 4096-wide band in 1.2–1.26 s against 2.2 s alone, with b = 8 they take as long as
 * one (n = 4096: 0.81–0.94 s against 0.84–0.86 s; n = 2048: 0.22–0.26 s against 0.21–0.22 s).
 */
const PARALLEL_MIN_BANDWIDTH = 12;

/** Whether a second thread is worth starting for a chase of order n and band width b. */
export function wantsParallelChase(n: number, threads: number | undefined, b: number): boolean {
  const t = threads ?? Math.min(2, availableParallelism());
  return t >= 2 && n >= 256 && b >= PARALLEL_MIN_BANDWIDTH && !workerBroken && !busy;
}

/**
 * Chases all sweeps of the band `a` (length `length`, ld = 2b) with two threads. Returns the
 * band's final storage (a shared copy when `a` was not already shared), or undefined when no
 * worker could be started or another chase is using it (the caller then runs the sequential chase
 * on the untouched `a`).
 */
export async function chaseInParallel(
  a: Float64Array,
  n: number,
  b: number,
  ld: number,
  kernel: ChaseKernel,
  clock: StepClock | undefined,
  onSweeps?: (done: number) => void,
): Promise<Float64Array | undefined> {
  if (busy) return undefined;
  busy = true;
  try {
    const w = await chaseWorker();
    if (!w) return undefined;
    return await chaseWith(w, a, n, b, ld, kernel, clock, onSweeps);
  } finally {
    busy = false;
  }
}

async function chaseWith(
  w: Worker,
  a: Float64Array,
  n: number,
  b: number,
  ld: number,
  kernel: ChaseKernel,
  clock: StepClock | undefined,
  onSweeps?: (done: number) => void,
): Promise<Float64Array> {
  const length = n * ld;
  let shared: Float64Array;
  if (a.buffer instanceof SharedArrayBuffer) shared = a;
  else {
    shared = new Float64Array(new SharedArrayBuffer(length * 8));
    shared.set(a.subarray(0, length));
  }
  // One entry per sweep, and the count of threads asleep in a wait (band-chase-kernel.ts).
  const progress = new Int32Array(new SharedArrayBuffer(4 * (Math.max(1, n) + 1)));
  const control = new Int32Array(new SharedArrayBuffer(4));
  const finished = new Promise<void>((resolve, reject) => {
    const onMessage = (msg: { error: string | null }) => {
      w.off('exit', onExit);
      if (msg.error) reject(new Error(`band chase worker failed: ${msg.error}`));
      else resolve();
    };
    const onExit = () => {
      w.off('message', onMessage);
      reject(new Error('band chase worker exited'));
    };
    w.once('message', onMessage);
    w.once('exit', onExit);
  });
  w.ref();
  const job: ChaseJob = {
    band: shared.buffer as SharedArrayBuffer,
    length,
    n,
    b,
    ld,
    first: 1,
    stride: 2,
    progress: progress.buffer,
    control: control.buffer,
  };
  w.postMessage(job);
  try {
    for (let c = 0; c < n - 2; c += 2) {
      kernel.sweep(shared, n, b, ld, c, progress);
      if (clock?.due()) {
        onSweeps?.(c + 1);
        await clock.tick();
      }
    }
  } catch (e) {
    // Stop the worker: flag it, and release any wait on our sweeps.
    Atomics.store(control, 0, 1);
    for (let c = 0; c < n; c += 2) {
      Atomics.store(progress, c, SWEEP_DONE);
      Atomics.notify(progress, c);
    }
    await finished.catch(() => undefined);
    w.unref();
    throw e;
  }
  try {
    await finished;
  } finally {
    w.unref();
  }
  return shared;
}
