/**
 * Reusable scratch memory. Fresh memory costs a page fault per 4 KiB on first touch (about 3 ms
 * per MB on our VMs, more than the arithmetic of most steps), while memory that was touched once
 * is free to reuse; so the big buffers of a spectrum job live here and are handed out again to
 * the next layer of the same size.
 */
export class Workspace {
  private readonly buffers = new Map<string, Float64Array>();
  private readonly buffers32 = new Map<string, Float32Array>();
  private readonly tags = new Map<string, unknown>();

  /**
   * A view of `length` doubles under `name`, growing the buffer when needed. The contents are
   * whatever the previous user left; callers that need zeros fill them.
   */
  f64(name: string, length: number): Float64Array {
    this.tags.delete(name);
    let buf = this.buffers.get(name);
    if (!buf || buf.length < length) {
      buf = new Float64Array(Math.max(length, 1));
      this.buffers.set(name, buf);
    }
    return buf.subarray(0, length);
  }

  /** As {@link f64}, for float32 buffers. */
  f32(name: string, length: number): Float32Array {
    this.tags.delete(name);
    let buf = this.buffers32.get(name);
    if (!buf || buf.length < length) {
      buf = new Float32Array(Math.max(length, 1));
      this.buffers32.set(name, buf);
    }
    return buf.subarray(0, length);
  }

  /**
   * What the buffer `name` holds, as its last user described it (see gramOperand); cleared
   * whenever the buffer is handed out again.
   */
  tag(name: string): unknown {
    return this.tags.get(name);
  }

  /** Records what the buffer `name` now holds, for a later user that could reuse it. */
  setTag(name: string, what: unknown): void {
    this.tags.set(name, what);
  }

  /**
   * Forgets what every buffer holds: a new job's matrices may live in storage an earlier job's
   * did (a reused weight buffer), so nothing of what it left may be taken for theirs.
   */
  forgetTags(): void {
    this.tags.clear();
  }

  /** The buffer `name` as it is, with its contents (undefined if it has fewer than `length` values). */
  peek32(name: string, length: number): Float32Array | undefined {
    const buf = this.buffers32.get(name);
    return buf && buf.length >= length ? buf.subarray(0, length) : undefined;
  }

  /** Bytes currently held. */
  get bytes(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.byteLength;
    for (const b of this.buffers32.values()) total += b.byteLength;
    return total;
  }

  release(): void {
    this.buffers.clear();
    this.buffers32.clear();
    this.tags.clear();
  }
}

let shared: Workspace | undefined;
/** The workspace shared by linear-algebra jobs of this thread (jobs run one at a time). */
export function sharedWorkspace(): Workspace {
  shared ??= new Workspace();
  return shared;
}

/** Drops the shared workspace's buffers, e.g. when a worker goes idle. */
export function releaseSharedWorkspace(): void {
  shared?.release();
}
