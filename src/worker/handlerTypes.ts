/** The shape of the worker's handler tables, shared by handlers.ts and analysisHandlers.ts. */
import type { WorkerMethods } from '../shared/workerProtocol';

export interface HandlerContext<G> {
  signal: AbortSignal;
  progress(p: G): void;
}

/** One handler per worker method in `M`, typed by the method's params, progress and result. */
export type HandlerTable<M extends keyof WorkerMethods> = {
  [K in M]: (
    params: WorkerMethods[K]['params'],
    ctx: HandlerContext<WorkerMethods[K]['progress']>,
  ) => Promise<WorkerMethods[K]['result']>;
};
