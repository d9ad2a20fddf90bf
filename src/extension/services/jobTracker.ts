/**
 * Long work the user can see and stop: batches (analyse all, compare methods, export) run under a
 * cancellable progress notification with "done / total" and an ETA; single recomputations from a
 * layer panel are only tracked. "Quant Lens: Cancel Running Analysis" stops all of them, and the
 * `quantLens.analysisRunning` context key says whether there is anything to stop.
 */
import * as vscode from 'vscode';
import { formatDuration } from '../../shared/formatting';
import type { JobProgress } from '../../shared/protocol/common';
import { EtaEstimator } from './eta';
import { isCancellation } from '../errors';

export interface BatchContext {
  signal: AbortSignal;
  /** Reports that `current` is being worked on. */
  working(current: string): void;
  /** Reports one item done. */
  tick(): void;
  /** Reports a worker job's own count: `done` items finished, `current` being worked on. */
  reached(done: number, current: string): void;
}

export interface BatchOptions {
  title: string;
  kind: JobProgress['kind'];
  total: number;
  /** What a unit is called in the notification: "layers". */
  unit: string;
  onProgress?: (p: JobProgress) => void;
}

export class JobTracker implements vscode.Disposable {
  private readonly running = new Set<AbortController>();

  constructor(private readonly log: vscode.LogOutputChannel) {}

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Tracks a controller until the returned disposable is disposed. */
  track(controller: AbortController): vscode.Disposable {
    this.running.add(controller);
    this.updateContext();
    return {
      dispose: () => {
        this.running.delete(controller);
        this.updateContext();
      },
    };
  }

  cancelAll(): number {
    const n = this.running.size;
    for (const c of [...this.running]) c.abort();
    return n;
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', 'quantLens.analysisRunning', this.running.size > 0);
  }

  /**
   * Runs a batch under a progress notification. Resolves with the body's result, or undefined when
   * the user cancelled; other errors reject.
   */
  async batch<T>(o: BatchOptions, body: (ctx: BatchContext) => Promise<T>): Promise<T | undefined> {
    const controller = new AbortController();
    const tracked = this.track(controller);
    const eta = new EtaEstimator(o.total);
    let current: string | null = null;
    const snapshot = (running: boolean): JobProgress => ({
      kind: o.kind,
      running,
      done: eta.done,
      total: o.total,
      current,
      etaMs: eta.etaMs(),
    });
    const started = Date.now();
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Quant Lens: ${o.title}`, cancellable: true },
        async (progress, token) => {
          const sub = token.onCancellationRequested(() => controller.abort());
          const report = (increment?: number) => {
            const left = eta.etaMs();
            const message = `${eta.done} / ${o.total} ${o.unit}${current ? ` · ${current}` : ''}${left !== null && eta.done < o.total ? ` · ETA ${formatDuration(left)}` : ''}`;
            progress.report({ message, ...(increment ? { increment } : {}) });
            o.onProgress?.(snapshot(true));
          };
          report();
          try {
            const result = await body({
              signal: controller.signal,
              working: (name) => {
                current = name;
                report();
              },
              tick: () => {
                eta.tick();
                report(100 / Math.max(1, o.total));
              },
              reached: (done, name) => {
                current = name;
                let increment = 0;
                for (; eta.done < done; increment += 100 / Math.max(1, o.total)) eta.tick();
                report(increment);
              },
            });
            this.log.info(`${o.title}: ${eta.done} / ${o.total} ${o.unit} in ${formatDuration(Date.now() - started)}`);
            return result;
          } finally {
            sub.dispose();
          }
        },
      );
    } catch (e) {
      if (isCancellation(e) || controller.signal.aborted) {
        this.log.info(
          `${o.title}: cancelled after ${eta.done} / ${o.total} ${o.unit} (${formatDuration(Date.now() - started)})`,
        );
        return undefined;
      }
      throw e;
    } finally {
      current = null;
      o.onProgress?.(snapshot(false));
      tracked.dispose();
    }
  }

  dispose(): void {
    this.cancelAll();
  }
}
