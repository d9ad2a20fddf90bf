/** Messages between a thread running the engine and its eigenvalue helper thread (eigenHelper.ts). */

/** Reduce the symmetric n×n float32 matrix in `matrix` (its first n² entries; destroyed). */
export interface EigenJobMessage {
  kind: 'job';
  id: number;
  matrix: ArrayBuffer;
  n: number;
}

export interface EigenCancelMessage {
  kind: 'cancel';
  id: number;
}

export type EigenRequest = EigenJobMessage | EigenCancelMessage;

/** The eigenvalues (descending), or why there are none; the matrix buffer comes back for reuse. */
export interface EigenReply {
  id: number;
  matrix: ArrayBuffer;
  values?: Float64Array;
  error?: { code: string; message: string };
}
