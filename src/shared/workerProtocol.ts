/** The methods the worker answers. Params and results are structured-clone safe. */
import type { CheckpointSummary } from './checkpointSummary';
import type { MethodSpec } from './rpc';

export type WorkerMethods = {
  /** Parses a checkpoint's headers and lists its tensors and linear layers. */
  openCheckpoint: MethodSpec<{ path: string }, CheckpointSummary>;
  /** Test hook: runs for `ms` milliseconds in steps, reporting progress, honouring cancellation. */
  sleep: MethodSpec<{ ms: number }, { slept: number }, { fraction: number }>;
};

export type WorkerMethodName = keyof WorkerMethods;
