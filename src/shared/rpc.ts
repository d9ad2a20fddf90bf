/**
 * The typed request/progress/response envelope used between the extension host and the worker
 * (and the CLI and its worker pool). A method table maps each method name to its params, result
 * and progress types; everything crossing the boundary is checked against it at compile time.
 */

export interface MethodSpec<P, R, G = never> {
  params: P;
  result: R;
  progress: G;
}

/** Method tables are declared as type aliases (not interfaces) so they satisfy this index signature. */
export type MethodTable = Record<string, MethodSpec<unknown, unknown, unknown>>;

export type RequestMessage<T extends MethodTable> = {
  [M in keyof T & string]: { kind: 'request'; id: number; method: M; params: T[M]['params'] };
}[keyof T & string];

export interface CancelMessage {
  kind: 'cancel';
  id: number;
}

export interface SerializedError {
  /** QuantLensError code, or 'internal' for anything unexpected. */
  code: string;
  message: string;
  file?: string;
}

export type ReplyMessage<T extends MethodTable> =
  | { kind: 'result'; id: number; result: T[keyof T]['result'] }
  | { kind: 'progress'; id: number; progress: T[keyof T]['progress'] }
  | { kind: 'error'; id: number; error: SerializedError };

/**
 * A worker's temporary file or folder appeared (alive) or went away: the pool removes the ones
 * left when it terminates the worker, so a cancelled or interrupted write leaves nothing behind.
 */
export interface TemporaryPathMessage {
  kind: 'temporary';
  path: string;
  alive: boolean;
}

/** Everything a worker posts to its pool. */
export type WorkerMessage<T extends MethodTable> = ReplyMessage<T> | TemporaryPathMessage;
