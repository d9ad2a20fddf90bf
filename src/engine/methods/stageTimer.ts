/**
 * Per-stage wall times of one analysis (`stageMs` of `inspect --json`, the extension's log line).
 * The times are exclusive: a stage timed inside another (the Gram a spectrum route asks for) is
 * counted once, under its own label, so that the stages add up to at most the analysis' time and a
 * profile read from them points at the right stage.
 */
import { throwIfCancelled } from '../errors';

export interface StageTimer {
  timings: Record<string, number>;
  /** Runs f, adds its time less that of the stages timed inside it to `label`, then checks the signal. */
  time<T>(label: string, f: () => Promise<T> | T): Promise<T>;
}

export function stageTimer(signal?: AbortSignal): StageTimer {
  const timings: Record<string, number> = {};
  // Time spent inside timed stages so far; a stage subtracts what its inner stages added to it.
  // Stages run one after another (never two at once), which this bookkeeping relies on.
  let timed = 0;
  return {
    timings,
    async time<T>(label: string, f: () => Promise<T> | T): Promise<T> {
      const t0 = performance.now();
      const before = timed;
      const r = await f();
      const spent = performance.now() - t0;
      timings[label] = (timings[label] ?? 0) + spent - (timed - before);
      timed = before + spent;
      throwIfCancelled(signal);
      return r;
    },
  };
}
