/**
 * How CLI commands reach the engine: in-process by default (one process, no thread hop), or
 * through the same worker pool the extension uses when `--jobs N` asks for parallel layers.
 */
import { join } from 'node:path';
import { CheckpointCache, StatsCache, createHandlers } from '../worker/handlers';
import type { HandlerContext } from '../worker/handlerTypes';
import { WorkerPool, type CallOptions } from '../worker/pool';
import type { WorkerMethods } from '../shared/workerProtocol';

export interface EngineCaller {
  call<M extends keyof WorkerMethods>(
    method: M,
    params: WorkerMethods[M]['params'],
    opts?: CallOptions<WorkerMethods[M]['progress']>,
  ): Promise<WorkerMethods[M]['result']>;
  dispose(): Promise<void>;
}

export function inProcessEngine(): EngineCaller {
  const checkpoints = new CheckpointCache();
  const stats = new StatsCache();
  const handlers = createHandlers(checkpoints, stats);
  return {
    call(method, params, opts = {}) {
      const handler = handlers[method] as (p: unknown, c: HandlerContext<unknown>) => Promise<never>;
      return handler(params, {
        signal: opts.signal ?? new AbortController().signal,
        progress: (p) => opts.onProgress?.(p as never),
      });
    },
    async dispose() {
      await checkpoints.closeAll();
      await stats.closeAll();
    },
  };
}

export function createEngine(jobs: number): EngineCaller {
  if (jobs <= 1) return inProcessEngine();
  // dist/cli.js and dist/worker.js are built side by side.
  return new WorkerPool({ script: join(__dirname, 'worker.js'), size: jobs });
}
