/**
 * Linear layers of an ONNX graph, found from the graph rather than from names: MatMul and Gemm
 * with a constant operand B, and 1×1 Conv with group 1. Each comes with the node, the activation
 * input (what calibration adds as a graph output), the weight's source and its orientation.
 */
import { OnnxModel, type OnnxNode, type WeightSource } from './model';
import { elementCountOf } from './tensor';

export interface OnnxLinear {
  node: OnnxNode;
  op: 'MatMul' | 'Gemm' | 'Conv';
  /** The value the node multiplies with the weight. */
  activationInput: string;
  /** The node input carrying the weight (a Transpose, Cast or Identity output if it passes through one). */
  weightInput: string;
  /** The constant value the weight comes from (initializer name or Constant output). */
  weightName: string;
  source: WeightSource;
  /** [out, in] */
  shape: [number, number];
  /** True when the stored tensor is [in, out]. */
  storedTransposed: boolean;
  transA: boolean;
  /** The layer's output reaches a graph output through only elementwise and shape ops: a classifier or lm_head. */
  isHead: boolean;
}

/** Ops a head's output passes through on its way to the graph output (bias, softmax, reshapes). */
const PASS_THROUGH = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Softmax',
  'LogSoftmax',
  'Sigmoid',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Cast',
  'Identity',
  'Flatten',
]);

function intAttr(node: OnnxNode, name: string, fallback: number): number {
  return OnnxModel.attribute(node, name)?.i ?? fallback;
}

/** Follows a weight input back through Identity, Cast and 2-D Transpose nodes to a constant. */
function resolveWeight(
  model: OnnxModel,
  value: string,
): { name: string; source: WeightSource; flipped: boolean } | null {
  let flipped = false;
  let name = value;
  for (let hops = 0; hops < 4; hops++) {
    const source = model.weightSource(name);
    if (source) return { name, source, flipped };
    const p = model.producer(name);
    if (!p || p.domain !== '' || p.inputs.length < 1) return null;
    // fp16 exports cast stored weights up to float before use.
    if (p.opType === 'Identity' || p.opType === 'Cast') name = p.inputs[0]!;
    else if (p.opType === 'Transpose') {
      const perm = OnnxModel.attribute(p, 'perm')?.ints;
      if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) return null;
      flipped = !flipped;
      name = p.inputs[0]!;
    } else return null;
  }
  return null;
}

function reachesOutputDirectly(model: OnnxModel, node: OnnxNode, outputs: Set<string>): boolean {
  const queue = [...node.outputs];
  const seen = new Set<string>(queue);
  while (queue.length && seen.size < 64) {
    const v = queue.shift()!;
    if (outputs.has(v)) return true;
    for (const c of model.consumers(v)) {
      if (!PASS_THROUGH.has(c.opType)) continue;
      for (const o of c.outputs) {
        if (!seen.has(o)) {
          seen.add(o);
          queue.push(o);
        }
      }
    }
  }
  return false;
}

export function findLinearLayers(model: OnnxModel): OnnxLinear[] {
  const outputs = new Set(model.graph.outputs.map((o) => o.name));
  const found: OnnxLinear[] = [];
  for (const node of model.graph.nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    const op = node.opType;
    if ((op !== 'MatMul' && op !== 'Gemm' && op !== 'Conv') || node.inputs.length < 2) continue;
    const weightInput = node.inputs[1]!;
    const w = resolveWeight(model, weightInput);
    if (!w) continue;
    const dims = w.source.tensor.dims;
    if (elementCountOf(dims) === 0) continue;
    let shape: [number, number];
    let storedTransposed: boolean;
    if (op === 'Conv') {
      // A 1×1 convolution with one group is a linear map over channels: weight [out, in, 1, 1].
      if (w.flipped || dims.length < 3 || intAttr(node, 'group', 1) !== 1 || dims.slice(2).some((d) => d !== 1))
        continue;
      shape = [dims[0]!, dims[1]!];
      storedTransposed = false;
    } else {
      if (dims.length !== 2) continue;
      // MatMul(x, W) and Gemm without transB hold W as [in, out]; Gemm with transB=1 as [out, in].
      const inOut = op === 'MatMul' || intAttr(node, 'transB', 0) === 0;
      storedTransposed = inOut !== w.flipped;
      shape = storedTransposed ? [dims[1]!, dims[0]!] : [dims[0]!, dims[1]!];
    }
    found.push({
      node,
      op,
      activationInput: node.inputs[0]!,
      weightInput,
      weightName: w.name,
      source: w.source,
      shape,
      storedTransposed,
      transA: op === 'Gemm' && intAttr(node, 'transA', 0) === 1,
      isHead: op !== 'Conv' && reachesOutputDirectly(model, node, outputs),
    });
  }
  return found;
}
