/** A progress line on stderr, redrawn in place when stderr is a terminal and silent otherwise. */
export class ProgressBar {
  private readonly start = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = !!stream.isTTY;
  }

  update(done: number, label: string, fraction = 0): void {
    if (!this.tty) return;
    const width = 24;
    const progress = Math.min(1, (done + fraction) / Math.max(1, this.total));
    const filled = Math.round(progress * width);
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = progress > 0 ? (elapsed / progress) * (1 - progress) : NaN;
    const text = `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${this.total} ${label} ${Number.isFinite(eta) && done > 0 ? `ETA ${formatSeconds(eta)}` : ''}`;
    const cols = this.stream.columns || 100;
    this.stream.write(`\r${text.slice(0, cols - 1).padEnd(cols - 1)}`);
  }

  done(): void {
    if (this.tty) this.stream.write(`\r${' '.repeat((this.stream.columns || 100) - 1)}\r`);
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}
