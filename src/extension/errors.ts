/** Turns anything thrown by the engine or the worker into what a panel or a notification shows. */
import { isQuantLensError, errorMessage } from '../engine/errors';
import type { UserFacingError } from '../shared/protocol/common';

export function toUserFacingError(e: unknown): UserFacingError {
  if (isQuantLensError(e)) return { code: e.code, message: e.message, ...(e.file ? { file: e.file } : {}) };
  return { code: 'internal', message: errorMessage(e) };
}

/** A user's cancellation, which is not an error to report. */
export function isCancellation(e: unknown): boolean {
  return isQuantLensError(e) && e.code === 'cancelled';
}
