/**
 * Emits standard ONNX nodes into a user's graph at the graph's own opset. Several operators moved
 * attributes to inputs across opsets (ReduceSum at 13, ReduceMax at 18, Pad at 11, Slice at 10,
 * Unsqueeze at 13) and Round only exists from 11 on; the PP-OCRv4 recognizer is opset 9, LLM
 * exports are 14–18, and the inserted nodes must be valid at whichever the model declares.
 */
import { QuantLensError } from '../errors';
import { OnnxType, type AttributeValue, type NodeSpec, type TensorInit } from '../onnx/builder';

/** 1.5·2^23: adding then subtracting it rounds a float32 in [0, 2^22) half to even. */
const ROUND_MAGIC = 12582912;

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorInit[] = [];
  private counter = 0;
  private readonly constants = new Map<string, string>();

  constructor(
    /** The default-domain opset of the model being edited. */
    readonly opset: number,
    /** Prefix of every value and node name this builder creates; must not clash with the model's. */
    readonly prefix: string,
  ) {
    if (opset < 9) {
      throw new QuantLensError('unsupported', `models below ONNX opset 9 cannot be rewritten (this one is ${opset})`);
    }
  }

  fresh(hint: string): string {
    return `${this.prefix}/${hint}_${this.counter++}`;
  }

  /** Adds a node; returns its first output's name. */
  op(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>, output?: string): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      op: opType,
      inputs,
      outputs: [out],
      name: `${out}#node`,
      ...(attributes ? { attributes } : {}),
    });
    return out;
  }

  /** A float32 initializer (shared when the same scalar is asked for twice). */
  f32(values: ArrayLike<number>, dims: number[], hint = 'const'): string {
    const scalar = dims.length === 0 ? `f32:${values[0]}` : null;
    if (scalar && this.constants.has(scalar)) return this.constants.get(scalar)!;
    const name = this.fresh(hint);
    const data = Float32Array.from(values);
    this.initializers.push({
      name,
      elemType: OnnxType.FLOAT,
      dims,
      raw: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    if (scalar) this.constants.set(scalar, name);
    return name;
  }

  i64(values: number[], dims = [values.length], hint = 'shape'): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    if (this.constants.has(key)) return this.constants.get(key)!;
    const name = this.fresh(hint);
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({ name, elemType: OnnxType.INT64, dims, raw: new Uint8Array(data.buffer) });
    this.constants.set(key, name);
    return name;
  }

  scalar(v: number): string {
    return this.f32([v], []);
  }

  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    const keep: AttributeValue = { kind: 'int', value: keepdims ? 1 : 0 };
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.i64(axes)], { keepdims: keep });
    return this.op('ReduceSum', [x], { axes: { kind: 'ints', value: axes }, keepdims: keep });
  }

  reduceMax(x: string, axes: number[], keepdims: boolean): string {
    const keep: AttributeValue = { kind: 'int', value: keepdims ? 1 : 0 };
    if (this.opset >= 18) return this.op('ReduceMax', [x, this.i64(axes)], { keepdims: keep });
    return this.op('ReduceMax', [x], { axes: { kind: 'ints', value: axes }, keepdims: keep });
  }

  /** Zero-pads the end of the last axis of a 2-D tensor by `extra` columns. */
  padColumns(x: string, extra: number): string {
    const pads = [0, 0, 0, extra];
    if (this.opset >= 11) return this.op('Pad', [x, this.i64(pads)]);
    return this.op('Pad', [x], { pads: { kind: 'ints', value: pads } });
  }

  /** x[:, 0:cols] of a 2-D tensor. */
  sliceColumns(x: string, cols: number): string {
    if (this.opset >= 10) return this.op('Slice', [x, this.i64([0]), this.i64([cols]), this.i64([1])]);
    return this.op('Slice', [x], {
      starts: { kind: 'ints', value: [0] },
      ends: { kind: 'ints', value: [cols] },
      axes: { kind: 'ints', value: [1] },
    });
  }

  unsqueeze(x: string, axes: number[]): string {
    if (this.opset >= 13) return this.op('Unsqueeze', [x, this.i64(axes)]);
    return this.op('Unsqueeze', [x], { axes: { kind: 'ints', value: axes } });
  }

  /**
   * Round half to even for non-negative inputs below 2^22: the ONNX Round operator where the opset
   * has it, else the float32 magic-number addition (exact in that range).
   */
  roundNonNegative(x: string): string {
    if (this.opset >= 11) return this.op('Round', [x]);
    const m = this.scalar(ROUND_MAGIC);
    return this.op('Sub', [this.op('Add', [x, m]), m]);
  }

  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm: { kind: 'ints', value: perm } });
  }

  reshape(x: string, shape: number[] | string): string {
    return this.op('Reshape', [x, typeof shape === 'string' ? shape : this.i64(shape)]);
  }

  castFloat(x: string): string {
    return this.op('Cast', [x], { to: { kind: 'int', value: OnnxType.FLOAT } });
  }
}
