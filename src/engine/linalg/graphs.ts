/**
 * Fused onnxruntime graphs for the dense → band reduction. Every output of an onnxruntime call is
 * copied out into JS memory (fresh memory costs about 3 ms per MB here), while intermediates stay
 * inside onnxruntime, in memory malloc hands back from one call to the next (kernels.ts: no
 * arena); so each step runs as one graph whose outputs are only what JS needs next.
 */
import { buildModel, OnnxType, type NodeSpec, type TensorInit, type ValueInfo } from '../onnx/builder';
import type { DType } from './kernels';

function int64Init(name: string, values: readonly bigint[]): TensorInit {
  const data = BigInt64Array.from(values);
  return { name, elemType: OnnxType.INT64, dims: [values.length], raw: new Uint8Array(data.buffer) };
}

function gemm(
  a: string,
  b: string,
  c: string | undefined,
  out: string,
  o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {},
): NodeSpec {
  return {
    op: 'Gemm',
    inputs: c ? [a, b, c] : [a, b],
    outputs: [out],
    attributes: {
      transA: { kind: 'int', value: o.transA ? 1 : 0 },
      transB: { kind: 'int', value: o.transB ? 1 : 0 },
      alpha: { kind: 'float', value: o.alpha ?? 1 },
      beta: { kind: 'float', value: o.beta ?? 1 },
    },
  };
}

function slice(data: string, starts: string, ends: string, axes: string, out: string): NodeSpec {
  return { op: 'Slice', inputs: [data, starts, ends, axes], outputs: [out] };
}

function concat(inputs: string[], out: string): NodeSpec {
  return { op: 'Concat', inputs, outputs: [out], attributes: { axis: { kind: 'int', value: 1 } } };
}

function mat(name: string, dtype: DType, d0: string, d1: string): ValueInfo {
  return { name, elemType: dtype === 'float32' ? OnnxType.FLOAT : OnnxType.DOUBLE, dims: [d0, d1] };
}

function i64(name: string): ValueInfo {
  return { name, elemType: OnnxType.INT64, dims: [1] };
}

const END = 2n ** 62n;

/**
 * One panel of the lazy two-sided update. With the current trailing matrix
 * A = A0 − ZAᵀ·ZB (A0 explicit, ZA/ZB the stacked update factors since A0 was last refreshed),
 * the panel's reflectors I − V·T·Vᵀ and U = V·T:
 *   X = A·U,  W = X − ½·V·(Uᵀ·X)        (so that QᵀAQ = A − V·Wᵀ − W·Vᵀ)
 *   P = columns [cs, ce) of the updated matrix, rows from rs
 * Outputs W and P from row rs on.
 */
export function panelGraphKey(dtype: DType): string {
  return `linalg:sy2sb-panel:${dtype}`;
}
export function panelGraph(dtype: DType): Uint8Array {
  return buildModel({
    name: 'sy2sb_panel',
    inputs: [
      mat('A', dtype, 'm', 'm'),
      mat('ZA', dtype, 'z', 'm'),
      mat('ZB', dtype, 'z', 'm'),
      mat('V', dtype, 'm', 'k'),
      mat('T', dtype, 'k', 'k'),
      i64('cs'),
      i64('ce'),
      i64('rs'),
      i64('kc'),
    ],
    initializers: [int64Init('ax0', [0n]), int64Init('ax1', [1n]), int64Init('zero', [0n]), int64Init('end', [END])],
    nodes: [
      { op: 'MatMul', inputs: ['V', 'T'], outputs: ['U'] },
      { op: 'MatMul', inputs: ['A', 'U'], outputs: ['AU'] },
      slice('A', 'cs', 'ce', 'ax1', 'Ac'),
      // Both corrections by the stacked factors in one product: ZAᵀ is the one large transposed
      // operand here, and a single product reads (and packs) it once instead of twice (10–20 % of
      // a panel's time at 2048–4096 once a few dozen panels have accumulated).
      { op: 'MatMul', inputs: ['ZB', 'U'], outputs: ['ZBU'] },
      slice('ZB', 'cs', 'ce', 'ax1', 'ZBc'),
      concat(['ZBU', 'ZBc'], 'ZC'),
      concat(['AU', 'Ac'], 'AUc'),
      gemm('ZA', 'ZC', 'AUc', 'XP', { transA: true, alpha: -1 }),
      slice('XP', 'zero', 'kc', 'ax1', 'X'),
      slice('XP', 'kc', 'end', 'ax1', 'P1'),
      gemm('U', 'X', undefined, 'M', { transA: true }),
      gemm('V', 'M', 'X', 'W', { alpha: -0.5 }),
      slice('W', 'cs', 'ce', 'ax0', 'Wc'),
      slice('V', 'cs', 'ce', 'ax0', 'Vc'),
      gemm('V', 'Wc', 'P1', 'P2', { transB: true, alpha: -1 }),
      gemm('W', 'Vc', 'P2', 'P3', { transB: true, alpha: -1 }),
      slice('W', 'rs', 'end', 'ax0', 'Wout'),
      slice('P3', 'rs', 'end', 'ax0', 'Pout'),
    ],
    outputs: [mat('Wout', dtype, 'wr', 'k'), mat('Pout', dtype, 'pr', 'pc')],
  });
}

/**
 * One block row of an explicit refresh: Out = Old[:, cs:ce) − ZA·ZBᵀ, where Old is a block of
 * full rows of the old explicit matrix and ZA/ZB are the update factors as rows.
 */
export function refreshGraphKey(dtype: DType): string {
  return `linalg:sy2sb-refresh:${dtype}`;
}
export function refreshGraph(dtype: DType): Uint8Array {
  return buildModel({
    name: 'sy2sb_refresh',
    inputs: [mat('Old', dtype, 'r', 'm'), mat('ZA', dtype, 'r', 'z'), mat('ZB', dtype, 'l', 'z'), i64('cs'), i64('ce')],
    initializers: [int64Init('ax1', [1n])],
    nodes: [slice('Old', 'cs', 'ce', 'ax1', 'C'), gemm('ZA', 'ZB', 'C', 'Out', { transB: true, alpha: -1 })],
    outputs: [mat('Out', dtype, 'r', 'l')],
  });
}

/**
 * One block row of a Gram, Y = Xr·Xlᵀ (+ C when accumulating), run with Y in a reused buffer
 * (Kernels.run's `outputs`).
 */
export function gramBlockGraphKey(dtype: DType, accumulate: boolean): string {
  return `linalg:gram-block:${dtype}:${accumulate ? 'acc' : 'set'}`;
}
export function gramBlockGraph(dtype: DType, accumulate: boolean): Uint8Array {
  return buildModel({
    name: 'gram_block',
    inputs: [
      mat('Xr', dtype, 'r', 'k'),
      mat('Xl', dtype, 'l', 'k'),
      ...(accumulate ? [mat('C', dtype, 'r', 'l')] : []),
    ],
    nodes: [gemm('Xr', 'Xl', accumulate ? 'C' : undefined, 'Y', { transB: true })],
    outputs: [mat('Y', dtype, 'r', 'l')],
  });
}
