/**
 * What the worker does for each method. Kept apart from the message plumbing so the CLI and the
 * tests can call the same functions in-process.
 */
import type { Checkpoint } from '../engine/readers/checkpoint';
import { elementCount } from '../engine/readers/checkpoint';
import { openCheckpoint } from '../engine/readers/open';
import { throwIfCancelled } from '../engine/errors';
import type { CheckpointSummary } from '../shared/checkpointSummary';
import type { WorkerMethods } from '../shared/workerProtocol';

export interface HandlerContext<G> {
  signal: AbortSignal;
  progress(p: G): void;
}

export type Handlers = {
  [M in keyof WorkerMethods]: (
    params: WorkerMethods[M]['params'],
    ctx: HandlerContext<WorkerMethods[M]['progress']>,
  ) => Promise<WorkerMethods[M]['result']>;
};

export function summarize(ckpt: Checkpoint): CheckpointSummary {
  let parameterCount = 0;
  for (const t of ckpt.tensors) parameterCount += elementCount(t.shape);
  return {
    format: ckpt.format,
    path: ckpt.path,
    files: ckpt.files,
    metadata: ckpt.metadata,
    architecture: ckpt.architecture,
    tensors: ckpt.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      file: t.file,
      byteLength: t.byteLength,
      decodable: t.decodable,
    })),
    linearLayers: ckpt.linearLayers,
    parameterCount,
  };
}

/** Open checkpoints, kept while the worker lives so later layer reads skip header parsing. */
export class CheckpointCache {
  private open = new Map<string, Promise<Checkpoint>>();
  constructor(private readonly capacity = 4) {}

  get(path: string): Promise<Checkpoint> {
    let c = this.open.get(path);
    if (c) {
      this.open.delete(path);
      this.open.set(path, c); // most recently used last
      return c;
    }
    c = openCheckpoint(path);
    this.open.set(path, c);
    c.catch(() => this.open.delete(path));
    while (this.open.size > this.capacity) {
      const [oldest, p] = this.open.entries().next().value as [string, Promise<Checkpoint>];
      this.open.delete(oldest);
      void p.then((ck) => ck.close()).catch(() => undefined);
    }
    return c;
  }
}

export function createHandlers(cache = new CheckpointCache()): Handlers {
  return {
    async openCheckpoint({ path }) {
      return summarize(await cache.get(path));
    },
    async sleep({ ms }, ctx) {
      const start = Date.now();
      while (Date.now() - start < ms) {
        throwIfCancelled(ctx.signal);
        await new Promise((r) => setTimeout(r, Math.min(10, ms)));
        ctx.progress({ fraction: Math.min(1, (Date.now() - start) / ms) });
      }
      return { slept: Date.now() - start };
    },
  };
}
