/**
 * Reusable scratch memory. Fresh memory costs a page fault per 4 KiB on first touch (about 3 ms
 * per MB on our VMs, more than the arithmetic of most steps), while memory that was touched once
 * is free to reuse; so the big buffers of a spectrum job live here and are handed out again to
 * the next layer of the same size.
 */
export class Workspace {
  private readonly buffers = new Map<string, Float64Array>();
  private readonly buffers32 = new Map<string, Float32Array>();

  /**
   * A view of `length` doubles under `name`, growing the buffer when needed. The contents are
   * whatever the previous user left; callers that need zeros fill them.
   */
  f64(name: string, length: number): Float64Array {
    let buf = this.buffers.get(name);
    if (!buf || buf.length < length) {
      buf = new Float64Array(Math.max(length, 1));
      this.buffers.set(name, buf);
    }
    return buf.subarray(0, length);
  }

  /** As {@link f64}, for float32 buffers. */
  f32(name: string, length: number): Float32Array {
    let buf = this.buffers32.get(name);
    if (!buf || buf.length < length) {
      buf = new Float32Array(Math.max(length, 1));
      this.buffers32.set(name, buf);
    }
    return buf.subarray(0, length);
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
