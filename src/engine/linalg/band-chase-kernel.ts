/**
 * The bulge-chasing kernel of band → tridiagonal, as one self-contained function: it references
 * nothing outside its own body, so that its source text can also be started in a worker thread
 * (see band-chase-worker.ts), where the second core chases every other sweep.
 *
 * Sweep c annihilates column c below the subdiagonal and chases the bulge down in steps of b
 * (LAPACK sb2st's scheme): step k works on the diagonal block at rows/columns r = c+1+k·b … r+b−1
 * and on the block below it, and only touches stored entries of columns r … r+b−1. Step k of sweep
 * c therefore conflicts only with steps k and k+1 of sweep c−1, so with `progress` (completed steps
 * per sweep, shared between threads) sweep c may start step k once sweep c−1 has completed k+2.
 */
export interface ChaseKernel {
  /**
   * Runs sweep c on the lower band `a` (column j at a[j·ld], ld = 2b). With `progress` (n + 1
   * entries), waits for sweep c−1 before each step and publishes its own completed steps in
   * progress[c]; its last entry counts the threads asleep in a wait (see waitFor).
   */
  sweep(a: Float64Array, n: number, b: number, ld: number, c: number, progress: Int32Array | null): void;
}

/** Marks a finished sweep in the progress array. */
export const SWEEP_DONE = 0x3fffffff;

export function createChaseKernel(): ChaseKernel {
  const DONE = 0x3fffffff;
  // Reflector and work vectors. Each function reads them into a local first: a reassignable
  // closure variable is reloaded from its context on every access in the inner loops (the locals
  // made a 4096-wide, b = 8 chase 0.86 s → 0.77 s).
  let vBuf = new Float64Array(0);
  let wBuf = new Float64Array(0);
  const beta = new Float64Array(1);

  function makeReflector(x: Float64Array, off: number, len: number): number {
    const alpha = x[off]!;
    let scale = 0;
    for (let i = 1; i < len; i++) scale = Math.max(scale, Math.abs(x[off + i]!));
    if (scale < 1e-300) {
      beta[0] = alpha;
      x[off] = 1;
      return 0;
    }
    let ss = 0;
    for (let i = 1; i < len; i++) {
      const t = x[off + i]! / scale;
      ss += t * t;
    }
    const as = alpha / scale;
    const norm = scale * Math.sqrt(as * as + ss);
    const bt = alpha >= 0 ? -norm : norm;
    const tau = (bt - alpha) / bt;
    const inv = 1 / (alpha - bt);
    for (let i = 1; i < len; i++) x[off + i] = x[off + i]! * inv;
    x[off] = 1;
    beta[0] = bt;
    return tau;
  }

  /** D ← H·D·H for the diagonal block at rows/columns r … r+len−1 (lower triangle stored). */
  function twoSided(a: Float64Array, ld: number, r: number, len: number, tau: number): void {
    const v = vBuf;
    const w = wBuf;
    for (let i = 0; i < len; i++) w[i] = 0;
    for (let j = 0; j < len; j++) {
      const base = (r + j) * ld - j;
      const vj = v[j]!;
      let s = a[base + j]! * vj;
      for (let i = j + 1; i < len; i++) {
        const x = a[base + i]!;
        w[i] = w[i]! + x * vj;
        s += x * v[i]!;
      }
      w[j] = w[j]! + s;
    }
    // w ← τ·w − (τ²/2)(wᵀv)·v, so that H·D·H = D − v·wᵀ − w·vᵀ.
    let wv = 0;
    for (let i = 0; i < len; i++) {
      w[i] = tau * w[i]!;
      wv += w[i]! * v[i]!;
    }
    const alpha = -0.5 * tau * wv;
    for (let i = 0; i < len; i++) w[i] = w[i]! + alpha * v[i]!;
    for (let j = 0; j < len; j++) {
      const base = (r + j) * ld - j;
      const vj = v[j]!;
      const wj = w[j]!;
      for (let i = j; i < len; i++) a[base + i] = a[base + i]! - v[i]! * wj - w[i]! * vj;
    }
  }

  /** B ← B·H for the block at rows r+len … r+len+below−1, columns r … r+len−1. */
  function right(a: Float64Array, ld: number, r: number, len: number, below: number, tau: number): void {
    const v = vBuf;
    const w = wBuf;
    for (let i = 0; i < below; i++) w[i] = 0;
    for (let j = 0; j < len; j++) {
      const base = (r + j) * ld + len - j;
      const vj = v[j]!;
      for (let i = 0; i < below; i++) w[i] = w[i]! + a[base + i]! * vj;
    }
    for (let j = 0; j < len; j++) {
      const base = (r + j) * ld + len - j;
      const t = tau * v[j]!;
      for (let i = 0; i < below; i++) a[base + i] = a[base + i]! - t * w[i]!;
    }
  }

  /** B ← H·B on that block's columns r+1 … r+len−1, with the reflector now in v. */
  function left(a: Float64Array, ld: number, r: number, len: number, below: number, tau: number): void {
    const v = vBuf;
    for (let j = 1; j < len; j++) {
      const base = (r + j) * ld + len - j;
      let s = 0;
      for (let i = 0; i < below; i++) s += v[i]! * a[base + i]!;
      s *= tau;
      for (let i = 0; i < below; i++) a[base + i] = a[base + i]! - s * v[i]!;
    }
  }

  function waitFor(progress: Int32Array, prev: number, steps: number): void {
    let spins = 0;
    let since = 0;
    for (;;) {
      const p = Atomics.load(progress, prev);
      if (p >= steps) return;
      // Spin briefly (a step takes microseconds), then sleep until notified; a partner that
      // makes no progress for seconds has died, and waiting longer would hang the caller. The
      // sleeper count lets the partner skip Atomics.notify while nobody sleeps: a notify takes a
      // process-wide lock, and one per step cost 5–10 % of a 4096-wide chase.
      if (++spins > 2000) {
        if (since === 0) since = Date.now();
        else if (Date.now() - since > 20000) throw new Error('band chase: the other thread stopped');
        const sleepers = progress.length - 1;
        Atomics.add(progress, sleepers, 1);
        Atomics.wait(progress, prev, p, 2);
        Atomics.sub(progress, sleepers, 1);
      }
    }
  }

  function publish(progress: Int32Array, c: number, steps: number): void {
    Atomics.store(progress, c, steps);
    // Sequentially consistent: either this load sees a sleeper's count, or that sleeper's wait
    // sees the value stored above and returns at once.
    if (Atomics.load(progress, progress.length - 1) > 0) Atomics.notify(progress, c);
  }

  function sweep(a: Float64Array, n: number, b: number, ld: number, c: number, progress: Int32Array | null): void {
    if (vBuf.length < b) {
      vBuf = new Float64Array(b);
      wBuf = new Float64Array(b);
    }
    const v = vBuf;
    const sync = progress !== null && c > 0;
    let r = c + 1;
    let len = Math.min(b, n - r);
    if (len >= 2) {
      if (sync) waitFor(progress, c - 1, 2);
      const col = c * ld + 1;
      let tau = makeReflector(a, col, len);
      for (let i = 0; i < len; i++) v[i] = a[col + i]!;
      a[col] = beta[0]!;
      for (let i = 1; i < len; i++) a[col + i] = 0;
      for (let k = 0; ; k++) {
        if (sync && k > 0) waitFor(progress, c - 1, k + 2);
        if (tau !== 0) twoSided(a, ld, r, len, tau);
        const below = Math.min(b, n - r - len);
        if (below <= 0) break;
        if (tau !== 0) right(a, ld, r, len, below, tau);
        const head = r * ld + len;
        let tau2 = 0;
        if (below > 1) {
          tau2 = makeReflector(a, head, below);
          for (let i = 0; i < below; i++) v[i] = a[head + i]!;
          a[head] = beta[0]!;
          for (let i = 1; i < below; i++) a[head + i] = 0;
          if (tau2 !== 0) left(a, ld, r, len, below, tau2);
        }
        if (progress !== null) publish(progress, c, k + 1);
        r += len;
        len = below;
        tau = tau2;
        if (len < 2) break;
      }
    }
    if (progress !== null) publish(progress, c, DONE);
  }

  return { sweep };
}
