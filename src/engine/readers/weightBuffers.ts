/**
 * Storage for weights read one layer after another (a sweep, a panel opened after another). On
 * these VMs memory first touched costs more than most passes over it: a 46 MB array decoded for
 * the first time takes 60–90 ms with huge pages, 10–14 ms when its pages were freed moments ago,
 * and memory freed for longer goes back to the host and costs the full price again. So the
 * storage of the last layer is kept and handed to the next read of a layer no larger.
 *
 * A buffer is leased: an analysis that is still running keeps its own, and a second one running
 * beside it on the same thread (a cancelled job still unwinding) gets a fresh array. A buffer left unused for
 * IDLE_MS is dropped, so an idle editor does not hold a layer's worth of memory.
 */

/** How long a released buffer is kept for the next read. */
export const IDLE_MS = 15_000;

export class WeightBuffers {
  private spare: Float32Array | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly idleMs = IDLE_MS) {}

  /**
   * A buffer of at least `length` values, with whatever an earlier layer left in it. A spare that
   * is too small is dropped rather than kept beside the new one.
   */
  acquire(length: number): Float32Array {
    const spare = this.spare;
    this.spare = null;
    this.stopTimer();
    if (spare && spare.length >= length) return spare;
    return new Float32Array(length);
  }

  /** Gives a buffer back once nothing reads it any more; the larger of two spares is kept. */
  release(buffer: Float32Array): void {
    if (!this.spare || buffer.length > this.spare.length) this.spare = buffer;
    this.stopTimer();
    this.timer = setTimeout(() => {
      this.spare = null;
      this.timer = undefined;
    }, this.idleMs);
    this.timer.unref?.();
  }

  /** Values held for the next read (0 when none). */
  get held(): number {
    return this.spare?.length ?? 0;
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

let shared: WeightBuffers | undefined;
/** The buffers of this thread's analyses. */
export function sharedWeightBuffers(): WeightBuffers {
  shared ??= new WeightBuffers();
  return shared;
}

/**
 * Runs `f` with `lease(length)`, which leases a buffer of at least `length` values when `f` reads a
 * weight (a result found in a store reads none), and gives it back afterwards, whatever `f` did;
 * `f` must not let anything that outlives it refer to the buffer. One lease per call.
 */
export async function withWeightBuffer<T>(f: (lease: (length: number) => Float32Array) => Promise<T>): Promise<T> {
  const pool = sharedWeightBuffers();
  let leased: Float32Array | undefined;
  try {
    return await f((length) => {
      if (leased) throw new Error('withWeightBuffer: one buffer per call');
      leased = pool.acquire(length);
      return leased;
    });
  } finally {
    if (leased) pool.release(leased);
  }
}
