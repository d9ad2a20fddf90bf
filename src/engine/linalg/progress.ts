/**
 * Cancellation and progress for long linear-algebra jobs. The engine runs in a worker whose cancel
 * message arrives through the event loop, so a long synchronous JS phase must give the loop a turn
 * now and then; otherwise `signal.aborted` would never become true while we compute.
 */
import { throwIfCancelled } from '../errors';

export interface LinalgOptions {
  signal?: AbortSignal;
  /** Called with a fraction in [0, 1] that never decreases. */
  onProgress?: (fraction: number) => void;
}

/** Longest stretch of synchronous work between two turns of the event loop. */
const SLICE_MS = 25;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Call `await clock.tick()` between steps of a long loop: cheap when the slice has not run out,
 * otherwise it yields to the event loop and then throws if the job was cancelled.
 */
export class StepClock {
  private last = performance.now();
  constructor(private readonly signal: AbortSignal | undefined) {}

  /** True when the current slice is used up; lets hot loops test without awaiting. */
  due(): boolean {
    return performance.now() - this.last >= SLICE_MS;
  }

  async tick(): Promise<void> {
    if (!this.due()) return;
    await yieldToEventLoop();
    this.last = performance.now();
    throwIfCancelled(this.signal);
  }

  /** Checks the signal without yielding (for use right after an awaited kernel call). */
  check(): void {
    throwIfCancelled(this.signal);
  }
}

/** Maps a sub-job's progress in [0, 1] onto [from, to] of the caller's progress. */
export function subProgress(opts: LinalgOptions, from: number, to: number): LinalgOptions {
  const report = opts.onProgress;
  const out: LinalgOptions = {};
  if (opts.signal) out.signal = opts.signal;
  if (report) out.onProgress = (f: number) => report(from + (to - from) * Math.min(1, Math.max(0, f)));
  return out;
}

/** Reports progress at most every few milliseconds, because callers post it across threads. */
export class ProgressReporter {
  private lastTime = 0;
  private lastValue = -1;
  constructor(private readonly report: ((fraction: number) => void) | undefined) {}

  set(fraction: number, force = false): void {
    if (!this.report) return;
    const f = Math.min(1, Math.max(0, fraction));
    const now = performance.now();
    if (f <= this.lastValue) return;
    if (!force && f < 1 && now - this.lastTime < 50) return;
    this.lastTime = now;
    this.lastValue = f;
    this.report(f);
  }
}
