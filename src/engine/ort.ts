/**
 * onnxruntime-node, loaded once on first use (a native module: commands that never run a graph
 * skip it), with every native call it makes counted.
 *
 * Why count: onnxruntime runs a session asynchronously on its own threads and then calls back into
 * the JS thread that started it. If that thread is a worker that was terminated meanwhile (the pool
 * terminates a worker that does not stop within its cancel grace), the callback throws a
 * Napi::Error that nothing can catch and the whole process aborts — the extension host with it
 * (reproduced: 1 run in 6 of test/unit/calibration/worker.test.ts). So the pool must never
 * terminate a worker in the middle of a native call. The count and a "retired" flag live in a
 * SharedArrayBuffer the pool reads without waiting for the worker's event loop, which may be busy.
 *
 * Telemetry: onnxruntime-node's native library records about 80 events per process into
 * ~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db (queued for upload), with a device
 * id beside it and a mat-debug-<pid>.log in the temporary folder, unless ORT_DISABLE_TELEMETRY=1
 * is in the process environment when its first session is created. Quant Lens carries no
 * telemetry, so the variable is always set first. The native library reads the process
 * environment, which only the main thread can change (a worker's process.env is a private copy):
 * the CLI, the extension host and the worker pool set it before any worker starts.
 */
import { isMainThread } from 'node:worker_threads';
import type * as OrtTypes from 'onnxruntime-node';
import { QuantLensError } from './errors';

export type Ort = typeof OrtTypes;

/** Int32 slots of the shared state. */
const IN_FLIGHT = 0;
const RETIRED = 1;
export const NATIVE_STATE_BYTES = 8;

let state: Int32Array<ArrayBufferLike> = new Int32Array(NATIVE_STATE_BYTES / 4);
let ortModule: Ort | undefined;

/** Called once in a worker with the buffer its pool also holds. */
export function shareNativeCallState(buffer: SharedArrayBuffer): void {
  state = new Int32Array(buffer);
}

/**
 * The shared state this thread counts its native calls in, when a pool gave it one: a helper
 * thread started from here counts into it too, so that the pool waits for both before it
 * terminates this thread (and with it the helper).
 */
export function sharedNativeCallState(): SharedArrayBuffer | undefined {
  return state.buffer instanceof SharedArrayBuffer ? state.buffer : undefined;
}

/**
 * Runs one native call, counted. The count goes up before the retired flag is read, and the pool
 * sets the flag before it reads the count (both sequentially consistent): so either the pool sees
 * the call and waits, or the call sees the flag and never starts.
 */
async function counted<T>(call: () => Promise<T>): Promise<T> {
  Atomics.add(state, IN_FLIGHT, 1);
  try {
    if (Atomics.load(state, RETIRED)) throw new QuantLensError('cancelled', 'cancelled');
    return await call();
  } finally {
    Atomics.sub(state, IN_FLIGHT, 1);
  }
}

/**
 * The same for a synchronous one: loading the native module initialises onnxruntime's environment
 * through N-API, and a thread terminated in the middle of that aborts the whole process.
 */
function countedSync<T>(call: () => T): T {
  Atomics.add(state, IN_FLIGHT, 1);
  try {
    if (Atomics.load(state, RETIRED)) throw new QuantLensError('cancelled', 'cancelled');
    return call();
  } finally {
    Atomics.sub(state, IN_FLIGHT, 1);
  }
}

function countNativeCalls(m: Ort): void {
  // Patched once on the module so that every session, whoever creates it, is covered.
  // The typings describe a factory; at run time InferenceSession is a class whose methods live on its prototype.
  const proto = (m.InferenceSession as unknown as { prototype: unknown }).prototype as Record<
    'run' | 'release',
    (...a: unknown[]) => Promise<unknown>
  >;
  for (const name of ['run', 'release'] as const) {
    const original = proto[name];
    proto[name] = function (this: unknown, ...args: unknown[]) {
      return counted(() => original.apply(this, args));
    };
  }
  const cls = m.InferenceSession as unknown as { create: (...a: unknown[]) => Promise<unknown> };
  const create = cls.create.bind(cls);
  cls.create = (...args: unknown[]) => counted(() => create(...args));
}

/** Sets ORT_DISABLE_TELEMETRY=1 in the process environment (main thread only; see above). */
export function disableOrtTelemetry(): void {
  if (isMainThread) process.env.ORT_DISABLE_TELEMETRY = '1';
}

export function ort(): Ort {
  if (!ortModule) {
    disableOrtTelemetry();
    if (process.env.ORT_DISABLE_TELEMETRY !== '1') {
      // A worker started by something other than our pool: its parent never disabled telemetry.
      throw new Error('onnxruntime is loaded only with ORT_DISABLE_TELEMETRY=1 set by the main thread');
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = countedSync(() => require('onnxruntime-node') as Ort);
    countNativeCalls(m);
    ortModule = m;
  }
  return ortModule;
}

/** Pool side: marks the worker as retired; true when it is in no native call and may be terminated now. */
export function retireNativeCalls(shared: Int32Array): boolean {
  Atomics.store(shared, RETIRED, 1);
  return Atomics.load(shared, IN_FLIGHT) === 0;
}

/** Pool side: whether a retired worker has left its last native call. */
export function nativeCallsDone(shared: Int32Array): boolean {
  return Atomics.load(shared, IN_FLIGHT) === 0;
}
