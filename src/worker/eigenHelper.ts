/**
 * Helper thread entry: the float32 reduction of a symmetric matrix to its eigenvalues, for the
 * thread that started it (the CLI's main thread or a pool worker). That thread reduces the scaled
 * error's spectrum meanwhile: on two cores the two reductions take about 1.5× the time of one
 * instead of 2× (measured at n = 2048, each with one onnxruntime thread), because much of a
 * reduction is single-threaded JS (the bulge chase, the tridiagonal eigenvalues) or memory-bound.
 * It also takes a band's chase and tridiagonal eigenvalues from that thread when the thread has
 * another layer to start on meanwhile (AnalyzeOptions.turn).
 *
 * Jobs run one at a time, in order. Native calls are counted in the starting thread's shared state
 * (engine/ort.ts), so a pool that retires that thread also waits for this one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage, isQuantLensError } from '../engine/errors';
import { bandEigenvalues, eigenvaluesInPlace, Kernels, Workspace } from '../engine/linalg';
import { shareNativeCallState } from '../engine/ort';
import type { EigenReply, EigenRequest } from './eigenHelperProtocol';

if (!parentPort) throw new Error('worker/eigenHelper.ts must run in a worker thread');
const port = parentPort;
const data = workerData as { nativeState?: SharedArrayBuffer } | null;
if (data?.nativeState) shareNativeCallState(data.nativeState);

// One onnxruntime thread: the starting thread's kernels use the other core.
const kernels = new Kernels({ threads: 1 });
const workspace = new Workspace();
const cancelled = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

function reply(msg: EigenReply): void {
  const transfer: ArrayBuffer[] = [msg.matrix];
  if (msg.values) transfer.push(msg.values.buffer as ArrayBuffer);
  port.postMessage(msg, transfer);
}

port.on('message', (msg: EigenRequest) => {
  if (msg.kind === 'cancel') {
    cancelled.get(msg.id)?.abort();
    return;
  }
  const controller = new AbortController();
  cancelled.set(msg.id, controller);
  queue = queue.then(async () => {
    try {
      const values =
        msg.kind === 'band'
          ? await bandEigenvalues(
              {
                n: msg.n,
                bandwidth: msg.bandwidth,
                ld: msg.ld,
                data: new Float64Array(msg.matrix, 0, msg.n * msg.ld),
              },
              { signal: controller.signal, threads: 1 },
            )
          : await eigenvaluesInPlace(new Float32Array(msg.matrix, 0, msg.n * msg.n), msg.n, {
              signal: controller.signal,
              kernels,
              workspace,
              chaseThreads: 1,
            });
      reply({ id: msg.id, matrix: msg.matrix, values });
    } catch (e) {
      const error = isQuantLensError(e)
        ? { code: e.code, message: e.message }
        : { code: 'internal', message: errorMessage(e) };
      reply({ id: msg.id, matrix: msg.matrix, error });
    } finally {
      cancelled.delete(msg.id);
    }
  });
});
