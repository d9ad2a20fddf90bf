/** Reporting problems the same way everywhere: the output channel always, a notification when asked. */
import * as vscode from 'vscode';
import { isCancellation, toUserFacingError } from './errors';

export class Reporter {
  constructor(readonly log: vscode.LogOutputChannel) {}

  /**
   * Logs `e` as a failure of `what` and, unless it is a cancellation, shows it. Never throws and
   * never returns a rejected promise, so it can end any command or message handler.
   */
  fail(what: string, e: unknown, notify = true): void {
    if (isCancellation(e)) {
      this.log.info(`${what}: cancelled`);
      return;
    }
    const error = toUserFacingError(e);
    this.log.error(
      `${what}: ${error.message}${error.code === 'internal' && e instanceof Error && e.stack ? `\n${e.stack}` : ''}`,
    );
    if (notify) void vscode.window.showErrorMessage(`Quant Lens: ${what}: ${error.message}`);
  }

  /** Runs a handler, reporting what it throws; for commands and postMessage handlers. */
  guard<A extends unknown[]>(what: string, fn: (...args: A) => unknown): (...args: A) => Promise<void> {
    return async (...args: A) => {
      try {
        await fn(...args);
      } catch (e) {
        this.fail(what, e);
      }
    };
  }
}
