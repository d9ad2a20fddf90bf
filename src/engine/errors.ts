/**
 * Errors the engine raises on purpose. Every problem with user input (a file, a setting, a
 * calibration source) becomes a QuantLensError naming the file and what is wrong, so the CLI can
 * exit with code 2 and the extension can show the message instead of a stack trace.
 */

export type ErrorCode =
  /** The file is not what it claims to be, or is damaged (truncated, malformed header, bad offsets). */
  | 'malformed'
  /** The file is valid but uses something Quant Lens does not handle (a dtype, an op, a version). */
  | 'unsupported'
  /** The file asks for something unsafe: a path outside its folder, a pickle global not on the list. */
  | 'unsafe'
  /** A size or count is beyond what can be allocated or is absurd for the format. */
  | 'too-large'
  /** A file the input refers to does not exist or cannot be read. */
  | 'not-found'
  /** A setting or argument is invalid. */
  | 'bad-argument'
  /** Calibration data is missing for the requested method. */
  | 'needs-calibration'
  /** The operation was cancelled by the user. */
  | 'cancelled';

export class QuantLensError extends Error {
  override readonly name = 'QuantLensError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The file the problem is in, when there is one. */
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
  }
}

export function isQuantLensError(e: unknown): e is QuantLensError {
  return e instanceof QuantLensError;
}

/** Throws a 'cancelled' error when the signal has fired; long loops call this between steps. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new QuantLensError('cancelled', 'cancelled');
}

/** Message for any thrown value, for logs and user-facing error boxes. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
