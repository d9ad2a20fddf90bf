/**
 * How many layer analyses to keep in flight, for the CLI's layer loop and the extension's
 * Analyze All alike. One thread analysing two layers side by side lets the second core finish one
 * layer's spectrum while the next is read and quantized (threadTurns.ts); several worker threads
 * already keep the cores busy with one layer each.
 */
import { availableParallelism } from 'node:os';

/**
 * Layers up to this many weights are analysed two at a time on one thread: each holds its weight
 * and scratch until it ends, and 2^25 keeps the pair of them within a few hundred MB.
 */
export const PIPELINE_MAX_WEIGHTS = 1 << 25;

/**
 * Analyses to keep in flight over `threads` analysing threads (worker threads, or the CLI's own
 * one): one per thread, or two on a single thread where a second core can take an analysis's last
 * reduction and every layer is within PIPELINE_MAX_WEIGHTS.
 */
export function analysesInFlight(threads: number, layers: readonly { shape: readonly number[] }[]): number {
  if (threads > 1) return threads;
  const largest = layers.reduce(
    (m, l) =>
      Math.max(
        m,
        l.shape.reduce((a, b) => a * b, 1),
      ),
    0,
  );
  return availableParallelism() >= 2 && largest <= PIPELINE_MAX_WEIGHTS ? 2 : 1;
}
