/**
 * Turns on this thread for analyses that run beside each other (the CLI's layer loop starts the
 * next layer while one waits for the helper thread): one analysis holds the thread at a time and
 * gives it up only inside ThreadTurn.away, so the engine's synchronous phases never interleave.
 * Each analysis that holds a turn also holds its own workspace, since the one that is away still
 * owns what its buffers hold (a Gram a fallback route would reuse).
 */
import { QuantLensError } from '../engine/errors';
import { sharedWorkspace, Workspace } from '../engine/linalg';
import type { ThreadTurn } from '../engine/methods/analyzeLayer';

export interface HeldTurn extends ThreadTurn {
  /** Scratch memory of this turn's analysis, its own while the turn lasts. */
  readonly workspace: Workspace;
  /** Gives the thread and the workspace up for good. */
  end(): void;
}

export class ThreadTurns {
  private busy = false;
  private readonly waiting: (() => void)[] = [];
  private sharedOut = false;
  private readonly spareWorkspaces: Workspace[] = [];

  /** Resolves when the thread is this caller's; a call cancelled while it waits leaves the queue. */
  async take(signal?: AbortSignal): Promise<HeldTurn> {
    await this.acquire(signal);
    const workspace = this.leaseWorkspace();
    const waiting = this.waiting;
    let ended = false;
    return {
      workspace,
      get contended() {
        return waiting.length > 0;
      },
      away: async <T>(p: Promise<T>): Promise<T> => {
        if (ended) throw new Error('ThreadTurn.away after end');
        this.release();
        try {
          return await p;
        } finally {
          await this.acquire();
        }
      },
      end: () => {
        if (ended) return;
        ended = true;
        this.returnWorkspace(workspace);
        this.release();
      },
    };
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new QuantLensError('cancelled', 'cancelled'));
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(granted);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        reject(new QuantLensError('cancelled', 'cancelled'));
      };
      const granted = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(granted);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }

  /** The thread's shared workspace when it is free (the usual case: one analysis at a time). */
  private leaseWorkspace(): Workspace {
    if (!this.sharedOut) {
      this.sharedOut = true;
      return sharedWorkspace();
    }
    return this.spareWorkspaces.pop() ?? new Workspace();
  }

  private returnWorkspace(ws: Workspace): void {
    if (ws === sharedWorkspace()) this.sharedOut = false;
    else this.spareWorkspaces.push(ws);
  }
}
