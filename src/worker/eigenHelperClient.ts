/**
 * The engine's EigenvalueOffload on a helper thread (eigenHelper.ts), started on first use. The
 * matrix is copied into a buffer that travels to the helper and back (kept for the next job of its
 * size: fresh memory costs a page fault per 4 KiB on first touch). A helper that cannot start or
 * dies makes every call reject with a plain Error, and analyzeLayer then computes the spectrum
 * on its own thread; a cancelled call rejects at once while the helper winds the job down.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { QuantLensError } from '../engine/errors';
import type { EigenvalueOffload } from '../engine/methods/analyzeLayer';
import { sharedNativeCallState } from '../engine/ort';
import type { SymmetricBand } from '../engine/linalg';
import type { EigenBandJobMessage, EigenJobMessage, EigenReply, EigenRequest } from './eigenHelperProtocol';

export interface HelperScript {
  path: string;
  execArgv?: string[];
}

/** dist/eigen-helper.js beside the bundle that runs this; the .ts entry through tsx from source. */
export function defaultHelperScript(): HelperScript {
  return __filename.endsWith('.ts')
    ? { path: join(__dirname, 'eigenHelper.ts'), execArgv: ['--require', 'tsx/cjs'] }
    : { path: join(__dirname, 'eigen-helper.js') };
}

interface Pending {
  resolve(values: Float64Array): void;
  reject(error: unknown): void;
}

export class EigenHelper {
  private worker: Worker | undefined;
  private failure: string | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private spare: ArrayBuffer | undefined;

  constructor(private readonly script: HelperScript = defaultHelperScript()) {}

  /** Whether offloading can pay: a second core to run on. */
  static worthwhile(): boolean {
    return availableParallelism() >= 2;
  }

  readonly eigenvalues: EigenvalueOffload = (matrix, n, signal) =>
    this.submit(n * n * 4, signal, (buffer, id) => {
      new Float32Array(buffer, 0, n * n).set(matrix.subarray(0, n * n));
      return { kind: 'job', id, matrix: buffer, n };
    });

  /** The eigenvalues of a symmetric band (its chase and tridiagonal QL), copied before this returns. */
  readonly bandEigenvalues = (band: SymmetricBand, signal?: AbortSignal): Promise<Float64Array> =>
    this.submit(band.n * band.ld * 8, signal, (buffer, id) => {
      new Float64Array(buffer, 0, band.n * band.ld).set(band.data.subarray(0, band.n * band.ld));
      return { kind: 'band', id, matrix: buffer, n: band.n, bandwidth: band.bandwidth, ld: band.ld };
    });

  /** Sends a job whose data `fill` copies into a transferable buffer of `bytes`. */
  private submit(
    bytes: number,
    signal: AbortSignal | undefined,
    fill: (buffer: ArrayBuffer, id: number) => EigenJobMessage | EigenBandJobMessage,
  ): Promise<Float64Array> {
    if (signal?.aborted) return Promise.reject(new QuantLensError('cancelled', 'cancelled'));
    let w: Worker;
    try {
      w = this.start();
    } catch (e) {
      return Promise.reject(e);
    }
    const buffer = this.spare && this.spare.byteLength >= bytes ? this.spare : new ArrayBuffer(bytes);
    this.spare = undefined;
    const id = this.nextId++;
    const job = fill(buffer, id);
    return new Promise<Float64Array>((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.delete(id)) return;
        this.post({ kind: 'cancel', id });
        this.idle();
        reject(new QuantLensError('cancelled', 'cancelled'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settled = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (v) => {
          settled();
          resolve(v);
        },
        reject: (e) => {
          settled();
          reject(e);
        },
      });
      // Held while a job is out: an unreferenced helper would let the process exit under a caller
      // that is only waiting for it.
      w.ref();
      w.postMessage(job satisfies EigenRequest, [buffer]);
    });
  }

  async dispose(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failure = 'the eigenvalue helper was disposed';
    this.rejectAll(this.failure);
    await w?.terminate();
  }

  private start(): Worker {
    if (this.failure) throw new Error(this.failure);
    if (this.worker) return this.worker;
    const nativeState = sharedNativeCallState();
    const w = new Worker(this.script.path, {
      workerData: nativeState ? { nativeState } : {},
      ...(this.script.execArgv ? { execArgv: this.script.execArgv } : {}),
    });
    w.on('message', (msg: EigenReply) => this.onReply(msg));
    w.on('error', (err) => this.fail(`the eigenvalue helper thread failed: ${err.message}`));
    w.on('exit', (code) => this.fail(`the eigenvalue helper thread exited with code ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  private post(msg: EigenRequest): void {
    this.worker?.postMessage(msg);
  }

  private onReply(msg: EigenReply): void {
    if (!this.spare || msg.matrix.byteLength > this.spare.byteLength) this.spare = msg.matrix;
    const p = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    this.idle();
    if (!p) return;
    if (msg.values) p.resolve(msg.values);
    else if (msg.error?.code === 'cancelled') p.reject(new QuantLensError('cancelled', 'cancelled'));
    else p.reject(new Error(`eigenvalue helper: ${msg.error?.message ?? 'no result'}`));
  }

  private idle(): void {
    if (this.pending.size === 0) this.worker?.unref();
  }

  private fail(reason: string): void {
    if (!this.failure) this.failure = reason;
    this.worker = undefined;
    this.rejectAll(reason);
  }

  private rejectAll(reason: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new Error(reason));
  }
}
