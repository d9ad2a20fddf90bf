/**
 * Fused graphs for the randomized SVD. The orthonormal bases are never handed back to JS between
 * power steps: a step receives the previous block Y and the inverse Cholesky factor R⁻¹ of its
 * Gram, forms Q = Y·R⁻¹ inside onnxruntime, multiplies by M (or Mᵀ), and returns the new block
 * with its float64 Gram. Only one block per step (n×ℓ) is copied out.
 */
import { buildModel, OnnxType, type NodeSpec, type ValueInfo } from '../onnx/builder';
import type { DType } from './kernels';

function elem(dtype: DType) {
  return dtype === 'float32' ? OnnxType.FLOAT : OnnxType.DOUBLE;
}

function v(name: string, dtype: DType, d0: string, d1: string): ValueInfo {
  return { name, elemType: elem(dtype), dims: [d0, d1] };
}

function cast(input: string, to: DType, out: string): NodeSpec {
  return { op: 'Cast', inputs: [input], outputs: [out], attributes: { to: { kind: 'int', value: elem(to) } } };
}

function gemm(a: string, b: string, out: string, transA = false, transB = false): NodeSpec {
  return {
    op: 'Gemm',
    inputs: [a, b],
    outputs: [out],
    attributes: { transA: { kind: 'int', value: +transA }, transB: { kind: 'int', value: +transB } },
  };
}

export function powerStepKey(dtype: DType, transposed: boolean): string {
  return `linalg:rsvd-step:${dtype}:${+transposed}`;
}

/**
 * Y = op(N)·(X·R⁻¹) and G = YᵀY (float64) for N = M·diag(s), op(N) = N or Nᵀ. X, R⁻¹ and the
 * column scale S (c×1) are in M's dtype. The scale multiplies the thin operand (before the product
 * with M, or after the one with Mᵀ), so a scaled matrix is never formed.
 */
export function powerStepGraph(dtype: DType, transposed: boolean): Uint8Array {
  const nodes: NodeSpec[] = [{ op: 'MatMul', inputs: ['X', 'Rinv'], outputs: ['Q'] }];
  if (transposed) nodes.push(gemm('M', 'Q', 'Yu', true), { op: 'Mul', inputs: ['Yu', 'S'], outputs: ['Y'] });
  else nodes.push({ op: 'Mul', inputs: ['Q', 'S'], outputs: ['Qs'] }, gemm('M', 'Qs', 'Y'));
  nodes.push(cast('Y', 'float64', 'Yd'), gemm('Yd', 'Yd', 'G', true));
  return buildModel({
    name: 'rsvd_step',
    inputs: [v('M', dtype, 'r', 'c'), v('X', dtype, 'p', 'l'), v('Rinv', dtype, 'l', 'l'), v('S', dtype, 'c', 'one')],
    nodes,
    outputs: [v('Y', dtype, 'q', 'l'), v('G', 'float64', 'l', 'l')],
  });
}

export function basisGramKey(dtype: DType): string {
  return `linalg:rsvd-basis-gram:${dtype}`;
}

/** G = QᵀQ for Q = (Y·R1⁻¹)·R2⁻¹ in float64: the next CholeskyQR pass. */
export function basisGramGraph(dtype: DType): Uint8Array {
  return buildModel({
    name: 'rsvd_basis_gram',
    inputs: [v('Y', dtype, 'p', 'l'), v('R1', 'float64', 'l', 'l'), v('R2', 'float64', 'l', 'l')],
    nodes: [
      cast('Y', 'float64', 'Yd'),
      { op: 'MatMul', inputs: ['Yd', 'R1'], outputs: ['Q1'] },
      { op: 'MatMul', inputs: ['Q1', 'R2'], outputs: ['Q'] },
      gemm('Q', 'Q', 'G', true),
    ],
    outputs: [v('G', 'float64', 'l', 'l')],
  });
}

export function projectKey(dtype: DType): string {
  return `linalg:rsvd-project:${dtype}`;
}

/**
 * Q = (Y·R1⁻¹)·R2⁻¹ (float64, returned), B = Qᵀ·N for N = M·diag(s) (S is 1×c; the product in M's
 * dtype, B returned widened) and C = B·Bᵀ (float64), the small matrix whose eigenvectors rotate Q
 * onto the left singular vectors. This is the last pass over M.
 */
export function projectGraph(dtype: DType): Uint8Array {
  return buildModel({
    name: 'rsvd_project',
    inputs: [
      v('M', dtype, 'r', 'c'),
      v('Y', dtype, 'r', 'l'),
      v('R1', 'float64', 'l', 'l'),
      v('R2', 'float64', 'l', 'l'),
      v('S', dtype, 'one', 'c'),
    ],
    nodes: [
      cast('Y', 'float64', 'Yd'),
      { op: 'MatMul', inputs: ['Yd', 'R1'], outputs: ['Q1'] },
      { op: 'MatMul', inputs: ['Q1', 'R2'], outputs: ['Q'] },
      cast('Q', dtype, 'Qm'),
      gemm('Qm', 'M', 'Bu', true),
      { op: 'Mul', inputs: ['Bu', 'S'], outputs: ['B'] },
      cast('B', 'float64', 'Bd'),
      gemm('Bd', 'Bd', 'C', false, true),
    ],
    outputs: [v('Q', 'float64', 'r', 'l'), v('Bd', 'float64', 'l', 'c'), v('C', 'float64', 'l', 'l')],
  });
}

export function factorsKey(dtype: DType): string {
  return `linalg:rsvd-factors:${dtype}`;
}

/**
 * U = Q·Eᵀ (E: eigenvectors of B·Bᵀ as rows, k×ℓ) and Vᵀ = diag(1/σ)·E·B, both returned in M's
 * dtype. Vᵀ comes from B (Halko et al.'s Algorithm 5.1) rather than from another pass over M: the
 * same float32 product with M stands behind either, and the rows of E·B are orthogonal by
 * construction (E diagonalizes B·Bᵀ in float64).
 */
export function factorsGraph(dtype: DType): Uint8Array {
  return buildModel({
    name: 'rsvd_factors',
    inputs: [
      v('Q', 'float64', 'r', 'l'),
      v('E', 'float64', 'k', 'l'),
      v('Sinv', 'float64', 'k', 'one'),
      v('Bd', 'float64', 'l', 'c'),
    ],
    nodes: [
      gemm('Q', 'E', 'Ud', false, true),
      cast('Ud', dtype, 'U'),
      { op: 'MatMul', inputs: ['E', 'Bd'], outputs: ['EB'] },
      { op: 'Mul', inputs: ['EB', 'Sinv'], outputs: ['Vtd'] },
      cast('Vtd', dtype, 'Vt'),
    ],
    outputs: [v('U', dtype, 'r', 'k'), v('Vt', dtype, 'k', 'c')],
  });
}
