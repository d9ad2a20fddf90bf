/** Worker thread entry: answers WorkerMethods requests arriving on parentPort. */
import { parentPort, workerData } from 'node:worker_threads';
import { isQuantLensError, errorMessage } from '../engine/errors';
import { shareNativeCallState } from '../engine/ort';
import { onTemporaryOutput } from '../engine/writers/safeOutput';
import type { CancelMessage, ReplyMessage, RequestMessage, SerializedError, TemporaryPathMessage } from '../shared/rpc';
import type { WorkerMethods } from '../shared/workerProtocol';
import { createHandlers } from './handlers';
import type { HandlerContext } from './handlerTypes';
import { transferablesOf } from './transfer';

if (!parentPort) throw new Error('worker/main.ts must run in a worker thread');
const port = parentPort;
const data = workerData as { nativeState?: SharedArrayBuffer } | null;
if (data?.nativeState) shareNativeCallState(data.nativeState);
// The pool may terminate this thread in mid-write (a cancel that does not stop in time, the window
// closing): it removes the temporary files this thread reported and has not yet removed.
onTemporaryOutput((path, alive) => port.postMessage({ kind: 'temporary', path, alive } satisfies TemporaryPathMessage));
const handlers = createHandlers();
const running = new Map<number, AbortController>();

function reply(msg: ReplyMessage<WorkerMethods>): void {
  port.postMessage(msg, msg.kind === 'result' ? transferablesOf(msg.result) : []);
}

export function serializeError(e: unknown): SerializedError {
  if (isQuantLensError(e)) return { code: e.code, message: e.message, ...(e.file ? { file: e.file } : {}) };
  return { code: 'internal', message: errorMessage(e) };
}

async function dispatch(msg: RequestMessage<WorkerMethods>): Promise<void> {
  const controller = new AbortController();
  running.set(msg.id, controller);
  const ctx: HandlerContext<unknown> = {
    signal: controller.signal,
    progress: (progress) => {
      if (!controller.signal.aborted) port.postMessage({ kind: 'progress', id: msg.id, progress });
    },
  };
  try {
    const handler = handlers[msg.method] as (p: unknown, c: HandlerContext<unknown>) => Promise<unknown>;
    const result = await handler(msg.params, ctx);
    if (!controller.signal.aborted) reply({ kind: 'result', id: msg.id, result: result as never });
  } catch (e) {
    reply({ kind: 'error', id: msg.id, error: serializeError(e) });
  } finally {
    running.delete(msg.id);
  }
}

port.on('message', (msg: RequestMessage<WorkerMethods> | CancelMessage) => {
  if (msg.kind === 'cancel') running.get(msg.id)?.abort();
  else void dispatch(msg);
});
