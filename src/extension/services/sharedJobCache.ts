/**
 * Results by key, computed once and shared: a second request for a key that is being computed
 * joins the running job instead of starting another, and a finished result is answered at once
 * (that is what makes reopening a layer panel instant). Each requester may cancel on its own; the
 * job itself is cancelled only when nobody waits for it any more. Kept free of the VS Code API.
 */
import { QuantLensError } from '../../engine/errors';

export interface JobRequest<P> {
  signal?: AbortSignal;
  onProgress?: (progress: P) => void;
}

export type JobStarter<V, P> = (signal: AbortSignal, onProgress: (progress: P) => void) => Promise<V>;

interface RunningJob<V, P> {
  promise: Promise<V>;
  controller: AbortController;
  waiters: number;
  listeners: Set<(progress: P) => void>;
}

export class SharedJobCache<V, P = never> {
  private readonly done = new Map<string, V>();
  private readonly running = new Map<string, RunningJob<V, P>>();

  /** @param capacity how many finished results to keep (least recently used go first). */
  constructor(
    private readonly capacity: number,
    private readonly onStored?: (key: string, value: V) => void,
  ) {}

  /** A finished result, without starting anything. */
  peek(key: string): V | undefined {
    return this.done.get(key);
  }

  has(key: string): boolean {
    return this.done.has(key);
  }

  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  get size(): number {
    return this.done.size;
  }

  get(key: string, start: JobStarter<V, P>, request: JobRequest<P> = {}): Promise<V> {
    const hit = this.done.get(key);
    if (hit !== undefined) {
      this.done.delete(key);
      this.done.set(key, hit);
      return Promise.resolve(hit);
    }
    if (request.signal?.aborted) return Promise.reject(new QuantLensError('cancelled', 'cancelled'));
    const job = this.running.get(key) ?? this.start(key, start);
    return this.join(key, job, request);
  }

  private start(key: string, start: JobStarter<V, P>): RunningJob<V, P> {
    const controller = new AbortController();
    const listeners = new Set<(progress: P) => void>();
    const job: RunningJob<V, P> = {
      controller,
      listeners,
      waiters: 0,
      promise: Promise.resolve().then(() =>
        start(controller.signal, (p) => {
          for (const l of listeners) l(p);
        }),
      ),
    };
    this.running.set(key, job);
    job.promise.then(
      (value) => {
        if (this.running.get(key) === job) this.running.delete(key);
        if (controller.signal.aborted) return;
        this.store(key, value);
      },
      () => {
        if (this.running.get(key) === job) this.running.delete(key);
      },
    );
    return job;
  }

  private join(key: string, job: RunningJob<V, P>, request: JobRequest<P>): Promise<V> {
    job.waiters++;
    const listener = request.onProgress;
    if (listener) job.listeners.add(listener);
    return new Promise<V>((resolve, reject) => {
      let settled = false;
      const leave = () => {
        if (listener) job.listeners.delete(listener);
        request.signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        settled = true;
        leave();
        job.waiters--;
        if (job.waiters === 0 && this.running.get(key) === job) {
          this.running.delete(key);
          job.controller.abort();
        }
        reject(new QuantLensError('cancelled', 'cancelled'));
      };
      request.signal?.addEventListener('abort', onAbort, { once: true });
      job.promise.then(
        (v) => {
          if (settled) return;
          settled = true;
          leave();
          job.waiters--;
          resolve(v);
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          leave();
          job.waiters--;
          reject(e);
        },
      );
    });
  }

  private store(key: string, value: V): void {
    this.done.delete(key);
    this.done.set(key, value);
    while (this.done.size > this.capacity) {
      const oldest = this.done.keys().next().value as string;
      this.done.delete(oldest);
    }
    this.onStored?.(key, value);
  }

  /**
   * Adds a result found elsewhere (the result store): as if a job had produced it, unless one for
   * the key is running (its own result follows).
   */
  put(key: string, value: V): void {
    if (!this.running.has(key)) this.store(key, value);
  }

  /** Forgets finished results (running jobs go on). */
  clear(): void {
    this.done.clear();
  }

  /** Cancels every running job. */
  cancelAll(): void {
    for (const job of this.running.values()) job.controller.abort();
    this.running.clear();
  }
}
