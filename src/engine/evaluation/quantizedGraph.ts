/**
 * The quantized copy of a model's graph, in one of two shapes:
 *  - folded (weight-only): each processed weight is replaced by Ŵ = W_q + (A_k·B_k)ᵀ;
 *  - split (as LQER runs it, docs/algorithms.md §1.3): the linear node multiplies Qx(x) by W_q, and a
 *    low-rank branch adds Qx(Qx(Qx(x)·A_k)·B_k), where Qx is MXINT fake quantization of the
 *    activation inserted as ONNX operators (mxintGraph.ts). Without an activation format the split
 *    graph computes the same function as the folded one, which the tests use to check the wiring.
 */
import { QuantLensError } from '../errors';
import { OnnxType, type NodeSpec, type TensorInit } from '../onnx/builder';
import { OnnxModel, type OnnxNode } from '../onnx/model';
import type { LinearSite } from '../calibration/linearSites';
import { GraphBuilder } from './graphBuilder';
import type { GraphEdits } from './graphEdit';
import { foldLowRank, type LayerAtRank } from './layerQuant';
import { mxintFakeQuant, type ActivationQuantSpec } from './mxintGraph';

export interface QuantizedGraphOptions {
  /** Fake-quantize linear inputs and the xA, xAB intermediates (W4A8 / W4A6 settings). */
  activation?: ActivationQuantSpec | null;
  /** Build the split graph even without activation quantization. */
  split?: boolean;
}

function f32Raw(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** float32 → IEEE half, round to nearest even (for weights a graph stores as float16). */
function toHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  if (r === 0x400) {
    r = 0;
    e++;
    if (e >= 0x1f) return sign | 0x7c00;
  }
  return sign | (e << 10) | r;
}

/** A weight [out, in] as the tensor the graph stores: same dims, orientation and float type. */
export function storedWeight(site: LinearSite, w: Float32Array): TensorInit {
  const { out, in: nIn } = { out: site.graph.shape[0], in: site.graph.shape[1] };
  const t = site.graph.source.tensor;
  let values = w;
  if (site.graph.storedTransposed) {
    values = new Float32Array(w.length);
    for (let o = 0; o < out; o++) for (let i = 0; i < nIn; i++) values[i * out + o] = w[o * nIn + i]!;
  }
  if (t.dataType === OnnxType.FLOAT16) {
    const h = Uint16Array.from(values, toHalfBits);
    return { name: site.graph.weightName, elemType: OnnxType.FLOAT16, dims: t.dims, raw: new Uint8Array(h.buffer) };
  }
  if (t.dataType !== OnnxType.FLOAT) {
    throw new QuantLensError(
      'unsupported',
      `weight "${site.graph.weightName}" is stored as type ${t.dataType}; only float32 and float16 weights can be replaced`,
    );
  }
  return { name: site.graph.weightName, elemType: OnnxType.FLOAT, dims: t.dims, raw: f32Raw(values) };
}

function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

/** Attributes of a 1×1 conv the branch's first conv must share (stride and padding move pixels). */
function convGeometry(node: OnnxNode): NodeSpec['attributes'] {
  const attrs: NonNullable<NodeSpec['attributes']> = {};
  for (const name of ['strides', 'pads']) {
    const a = OnnxModel.attribute(node, name);
    if (a?.ints) attrs[name] = { kind: 'ints', value: a.ints };
  }
  const autoPad = OnnxModel.attribute(node, 'auto_pad');
  if (autoPad?.s) attrs.auto_pad = { kind: 'string', value: autoPad.s };
  return attrs;
}

interface SplitLayer {
  site: LinearSite;
  layer: LayerAtRank;
}

interface SplitState {
  insertNodes: NonNullable<GraphEdits['insertNodes']>;
  rewire: NonNullable<GraphEdits['rewire']>;
  /** Quantized activations already built, by source value: q, k and v share one Qx(x). */
  quantizedInputs: Map<string, string>;
}

function addSplitLayer(b: GraphBuilder, edits: SplitState, s: SplitLayer, act: ActivationQuantSpec | null): void {
  const { site, layer } = s;
  const g = site.graph;
  if (g.op === 'Gemm' && g.transA) {
    throw new QuantLensError(
      'unsupported',
      `Gemm "${g.node.name}" with transA=1 cannot be split into a low-rank branch`,
    );
  }
  const conv = g.op === 'Conv';
  const layout = conv ? 'nchw' : 'last';
  const start = b.nodes.length;
  const x = g.activationInput;
  let xq = x;
  if (act) {
    const key = `${x}\u0000${layout}`;
    xq = edits.quantizedInputs.get(key) ?? mxintFakeQuant(b, x, layer.in, layout, act);
    edits.quantizedInputs.set(key, xq);
  }
  const k = layer.rank;
  let branch: string | null = null;
  if (k > 0) {
    const { in: nIn, out } = layer;
    let xa: string;
    let xab: string;
    if (conv) {
      const aW = b.f32(transposed(layer.a, nIn, k), [k, nIn, 1, 1], 'lowrank_a');
      const bW = b.f32(transposed(layer.b, k, out), [out, k, 1, 1], 'lowrank_b');
      xa = b.op('Conv', [xq, aW], convGeometry(g.node));
      if (act) xa = mxintFakeQuant(b, xa, k, layout, act);
      xab = b.op('Conv', [xa, bW]);
    } else {
      const aW = b.f32(layer.a, [nIn, k], 'lowrank_a');
      const bW = b.f32(layer.b, [k, out], 'lowrank_b');
      xa = b.op('MatMul', [xq, aW]);
      if (act) xa = mxintFakeQuant(b, xa, k, layout, act);
      xab = b.op('MatMul', [xa, bW]);
    }
    if (act) xab = mxintFakeQuant(b, xab, out, layout, act);
    const alpha = g.op === 'Gemm' ? OnnxModel.attribute(g.node, 'alpha')?.f : undefined;
    if (alpha !== undefined && alpha !== 1) xab = b.op('Mul', [xab, b.scalar(alpha)]);
    branch = xab;
  }
  for (const node of b.nodes.slice(start)) edits.insertNodes.push({ before: g.node.index, node });
  const y = g.node.outputs[0]!;
  const main = branch ? b.fresh('main') : y;
  const inputs = [...g.node.inputs];
  inputs[0] = xq;
  edits.rewire.set(g.node.index, { inputs, outputs: [main, ...g.node.outputs.slice(1)] });
  if (branch) {
    const add: NodeSpec = { op: 'Add', inputs: [main, branch], outputs: [y], name: `${y}#lowrank_add` };
    edits.insertNodes.push({ after: g.node.index, node: add });
  }
}

/** The graph edits that turn the float model into the quantized one. */
export function quantizedGraphEdits(
  layers: { site: LinearSite; layer: LayerAtRank }[],
  opset: number,
  options: QuantizedGraphOptions = {},
): GraphEdits {
  const act = options.activation ?? null;
  const split = !!act || !!options.split;
  const replaceWeights = new Map<string, TensorInit>();
  if (!split) {
    for (const { site, layer } of layers)
      replaceWeights.set(site.graph.weightName, storedWeight(site, foldLowRank(layer)));
    return { replaceWeights };
  }
  const b = new GraphBuilder(opset, 'quant_lens_q');
  const edits: SplitState = { insertNodes: [], rewire: new Map(), quantizedInputs: new Map() };
  for (const l of layers) {
    replaceWeights.set(l.site.graph.weightName, storedWeight(l.site, l.layer.wq));
    addSplitLayer(b, edits, l, act);
  }
  return { replaceWeights, insertNodes: edits.insertNodes, rewire: edits.rewire, addInitializers: b.initializers };
}
