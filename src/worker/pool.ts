/**
 * A small pool of worker threads running the engine. Each worker takes one job at a time (a job
 * already keeps both cores busy through onnxruntime's thread pool), except that two jobs called
 * with `shareWorker` may run on one worker side by side: layer analyses take turns on its thread
 * and the second core finishes one's spectrum while the next is read (threadTurns.ts). Jobs queue
 * in order, and cancellation is guaranteed to take effect at once: the job's promise rejects
 * immediately, and a worker that has not wound the job down within `cancelGraceMs` is terminated
 * and replaced (a long native GEMM cannot be interrupted from JS); a job that shared it goes back
 * to the front of the queue.
 */
import { Worker } from 'node:worker_threads';
import { QuantLensError } from '../engine/errors';
import { NATIVE_STATE_BYTES, nativeCallsDone, retireNativeCalls } from '../engine/ort';
import { removeTemporaryOutputs, trackTemporaryOutput } from '../engine/writers/safeOutput';
import { disableOrtTelemetry } from '../engine/ort';
import type { CancelMessage, RequestMessage, SerializedError, WorkerMessage } from '../shared/rpc';
import type { WorkerMethods } from '../shared/workerProtocol';

export interface CallOptions<G> {
  signal?: AbortSignal;
  onProgress?: (progress: G) => void;
  /**
   * May run on a worker beside one other such job (see the top of this file). For layer analyses
   * whose two weights and scratch fit in memory together (pipelining.ts).
   */
  shareWorker?: boolean;
}

/** Jobs one worker may run side by side when they all share. */
const SHARED_JOBS_PER_WORKER = 2;

export interface PoolOptions {
  /** Path of the worker script (dist/worker.js, or src/worker/main.ts with tsx in tests). */
  script: string;
  size?: number;
  execArgv?: string[];
  /** How long a cancelled job may take to stop before its worker is terminated. */
  cancelGraceMs?: number;
  env?: Record<string, string>;
}

interface Job {
  id: number;
  message: RequestMessage<WorkerMethods>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  onProgress?: (p: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
  shareWorker: boolean;
}

interface Slot {
  worker: Worker;
  /** Running on this worker: one, or up to SHARED_JOBS_PER_WORKER that all share. */
  jobs: Job[];
  /** Shared with the worker: its count of onnxruntime calls in flight and a retired flag (engine/ort.ts). */
  native: Int32Array;
  /** Temporary files and folders the worker has open (safeOutput.ts), removed when it is terminated. */
  temporary: Set<string>;
}

export class WorkerError extends Error {
  constructor(readonly error: SerializedError) {
    super(error.message);
  }
}

/** Turns a worker-side error back into the error type the caller expects. */
function reviveError(e: SerializedError): Error {
  if (e.code === 'internal') return new WorkerError(e);
  return new QuantLensError(
    e.code as ConstructorParameters<typeof QuantLensError>[0],
    stripFile(e.message, e.file),
    e.file,
  );
}

function stripFile(message: string, file: string | undefined): string {
  return file && message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message;
}

export class WorkerPool {
  private slots: Slot[] = [];
  private queue: Job[] = [];
  private nextId = 1;
  private disposed = false;
  private readonly size: number;
  private readonly grace: number;

  constructor(private readonly options: PoolOptions) {
    this.size = Math.max(1, options.size ?? 1);
    this.grace = options.cancelGraceMs ?? 100;
    // Workers read the process environment that this (main) thread sets; a worker's own
    // process.env is a private copy that onnxruntime never sees.
    disableOrtTelemetry();
  }

  call<M extends keyof WorkerMethods>(
    method: M,
    params: WorkerMethods[M]['params'],
    opts: CallOptions<WorkerMethods[M]['progress']> = {},
  ): Promise<WorkerMethods[M]['result']> {
    if (this.disposed) return Promise.reject(new Error('worker pool is disposed'));
    if (opts.signal?.aborted) return Promise.reject(new QuantLensError('cancelled', 'cancelled'));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const job: Job = {
        id,
        message: { kind: 'request', id, method, params } as RequestMessage<WorkerMethods>,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: opts.onProgress as ((p: unknown) => void) | undefined,
        signal: opts.signal,
        settled: false,
        shareWorker: opts.shareWorker ?? false,
      };
      if (opts.signal) {
        job.onAbort = () => this.cancel(job);
        opts.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Number of jobs running or waiting. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /** Number of jobs running on a worker. */
  get running(): number {
    return this.slots.reduce((n, s) => n + s.jobs.length, 0);
  }

  private settle(job: Job, ok: boolean, value: unknown): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (ok) job.resolve(value);
    else job.reject(value);
  }

  private cancel(job: Job): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    this.settle(job, false, new QuantLensError('cancelled', 'cancelled'));
    const slot = this.slots.find((s) => s.jobs.includes(job));
    if (!slot) return;
    slot.worker.postMessage({ kind: 'cancel', id: job.id } satisfies CancelMessage);
    const timer = setTimeout(() => {
      if (!slot.jobs.includes(job)) return;
      // The job sharing the worker was not cancelled: it starts again on another.
      const others = slot.jobs.filter((j) => j !== job && !j.settled);
      this.queue.unshift(...others);
      this.replace(slot);
    }, this.grace);
    timer.unref?.();
  }

  private spawn(): Slot {
    const nativeState = new SharedArrayBuffer(NATIVE_STATE_BYTES);
    const worker = new Worker(this.options.script, {
      workerData: { nativeState },
      execArgv: this.options.execArgv,
      env: this.options.env ? { ...process.env, ...this.options.env } : undefined,
    });
    const slot: Slot = { worker, jobs: [], native: new Int32Array(nativeState), temporary: new Set() };
    worker.on('message', (msg: WorkerMessage<WorkerMethods>) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.onCrash(slot, err));
    worker.on('exit', (code) => {
      if (slot.jobs.length) this.onCrash(slot, new Error(`worker exited with code ${code}`));
      this.slots = this.slots.filter((s) => s !== slot);
      this.pump();
    });
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private replace(slot: Slot): void {
    slot.jobs = [];
    this.slots = this.slots.filter((s) => s !== slot);
    void stopWorker(slot);
    this.pump();
  }

  private onCrash(slot: Slot, err: Error): void {
    const jobs = slot.jobs;
    slot.jobs = [];
    for (const job of jobs) {
      this.settle(job, false, new WorkerError({ code: 'internal', message: `worker failed: ${err.message}` }));
    }
    this.replace(slot);
  }

  private onMessage(slot: Slot, msg: WorkerMessage<WorkerMethods>): void {
    if (msg.kind === 'temporary') {
      if (msg.alive) slot.temporary.add(msg.path);
      else slot.temporary.delete(msg.path);
      // Also known to this thread's exit and signal handlers.
      trackTemporaryOutput(msg.path, msg.alive);
      return;
    }
    const job = slot.jobs.find((j) => j.id === msg.id);
    if (!job) return; // a reply from a job that was cancelled and replaced
    if (msg.kind === 'progress') {
      if (!job.settled) job.onProgress?.(msg.progress);
      return;
    }
    slot.jobs = slot.jobs.filter((j) => j !== job);
    if (msg.kind === 'result') this.settle(job, true, msg.result);
    else this.settle(job, false, reviveError(msg.error));
    this.pump();
  }

  private pump(): void {
    if (this.disposed) return;
    while (this.queue.length) {
      const job = this.queue[0]!;
      let slot = this.slots.find((s) => s.jobs.length === 0);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      // Shared only once every worker is busy.
      if (!slot && job.shareWorker) slot = this.slots.find((s) => canShare(s));
      if (!slot) break;
      this.queue.shift();
      slot.jobs.push(job);
      slot.worker.ref();
      slot.worker.postMessage(job.message);
    }
    for (const s of this.slots) if (s.jobs.length === 0) s.worker.unref();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const job of this.queue) this.settle(job, false, new QuantLensError('cancelled', 'cancelled'));
    this.queue = [];
    const slots = this.slots;
    this.slots = [];
    for (const s of slots)
      for (const job of s.jobs) this.settle(job, false, new QuantLensError('cancelled', 'cancelled'));
    await Promise.all(slots.map(stopWorker));
  }
}

/** Whether `slot` may take one more shared job: it runs only jobs that share, and fewer than the limit. */
function canShare(slot: Slot): boolean {
  const n = slot.jobs.length;
  return n > 0 && n < SHARED_JOBS_PER_WORKER && slot.jobs.every((j) => j.shareWorker);
}

const NATIVE_POLL_MS = 20;

/**
 * Terminates a worker, but never inside an onnxruntime call: that aborts the whole process (see
 * engine/ort.ts). A worker in one is retired (it starts no new call) and terminated when the call
 * returns; its job has already been settled, so cancellation still takes effect at once.
 */
async function stopWorker(slot: Slot): Promise<void> {
  slot.worker.unref();
  if (!retireNativeCalls(slot.native)) {
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!nativeCallsDone(slot.native)) return;
        clearInterval(timer);
        resolve();
      }, NATIVE_POLL_MS);
    });
  }
  await slot.worker.terminate();
  // A worker terminated in mid-write cannot clean up after itself.
  removeTemporaryOutputs(slot.temporary);
  slot.temporary.clear();
}
