/** Remaining time of a batch of similar jobs, from the pace so far. */
export class EtaEstimator {
  private readonly started: number;
  private finished = 0;

  constructor(
    readonly total: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  get done(): number {
    return this.finished;
  }

  /** Marks one more job done (failed jobs count: they took their time too). */
  tick(): void {
    this.finished = Math.min(this.total, this.finished + 1);
  }

  elapsedMs(): number {
    return this.now() - this.started;
  }

  /** Milliseconds left, or null before the first job finished. */
  etaMs(): number | null {
    if (this.finished === 0) return null;
    if (this.finished >= this.total) return 0;
    return (this.elapsedMs() / this.finished) * (this.total - this.finished);
  }
}
