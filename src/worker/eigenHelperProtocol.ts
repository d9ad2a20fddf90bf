/** Messages between a thread running the engine and its eigenvalue helper thread (eigenHelper.ts). */

/** Reduce the symmetric n×n float32 matrix in `matrix` (its first n² entries; destroyed). */
export interface EigenJobMessage {
  kind: 'job';
  id: number;
  matrix: ArrayBuffer;
  n: number;
}

/**
 * Eigenvalues of a symmetric band (the first stage's output, linalg's SymmetricBand): `matrix`
 * holds its n·ld float64 entries (destroyed), bandwidth b.
 */
export interface EigenBandJobMessage {
  kind: 'band';
  id: number;
  matrix: ArrayBuffer;
  n: number;
  bandwidth: number;
  ld: number;
}

export interface EigenCancelMessage {
  kind: 'cancel';
  id: number;
}

export type EigenRequest = EigenJobMessage | EigenBandJobMessage | EigenCancelMessage;

/** The eigenvalues (descending), or why there are none; the matrix buffer comes back for reuse. */
export interface EigenReply {
  id: number;
  matrix: ArrayBuffer;
  values?: Float64Array;
  error?: { code: string; message: string };
}
