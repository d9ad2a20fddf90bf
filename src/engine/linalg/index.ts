/**
 * Exact spectra and low-rank factors for the quantization-error analysis. See each module for the
 * method; all long-running functions take { signal, onProgress } and yield to the event loop often
 * enough (every ~25 ms of JS, or between kernel calls) for cancellation to take effect promptly.
 */
export { Kernels, kernels, mat, type FloatArray, type Mat, type DType } from './kernels';
export type { LinalgOptions } from './progress';
export { Workspace, sharedWorkspace, releaseSharedWorkspace } from './workspace';
export { gram, gramInto, resolveSide, type Gram, type GramOptions, type GramSide } from './gram';
export {
  symmetricEigenvalues,
  eigenvaluesInPlace,
  bandEigenvalues,
  type BandOffload,
  type EigenvalueOptions,
} from './symmetric-eigenvalues';
export { singularValues, singularValuesFromGram, squareRoots, type SingularValueOptions } from './singular-values';
export {
  topSingularTriplets,
  exactResidual,
  defaultOversampling,
  DEFAULT_POWER_ITERATIONS,
  warmUpTriplets,
  type SingularTriplets,
  type TripletOptions,
} from './randomized-svd';
export {
  cholesky,
  solveTriangular,
  invertLowerTriangular,
  NotPositiveDefiniteError,
  type CholeskyOptions,
  type TriangularSolveOptions,
} from './cholesky';
export { symmetricEigen, type SymmetricEigen } from './symmetric-eigen';
export { tridiagonalEigenvalues } from './tridiagonal-eigenvalues';
export { tridiagonalEigenvectors } from './tridiagonal-eigenvectors';
export { orthonormalize, householderQr, type QrResult } from './orthonormalize';
export { disposeChaseWorker } from './band-chase-worker';
export type { SymmetricBand } from './band-to-tridiagonal';
export {
  deflatedSingularValues,
  findCliff,
  FLOAT32_KAPPA,
  U32,
  type Cliff,
  type DeflatedSpectrum,
  type DeflationOptions,
  type TopVectors,
} from './deflated-spectrum';
