/**
 * The calibration rewrite: for every distinct linear-layer input, nodes that reduce the activation
 * inside onnxruntime to what the accumulator needs per batch (Σ|x| and Σx² per channel, the row
 * count, and XᵀX when the Gram is asked for), added as graph outputs. Shipping those few numbers
 * out instead of whole activations matters: every onnxruntime-node output is copied into fresh
 * memory, and activations are large.
 */
import { OnnxType, type ValueInfo } from '../onnx/builder';
import { GraphBuilder } from '../evaluation/graphBuilder';
import type { GraphEdits } from '../evaluation/graphEdit';
import type { ActivationLayout, LinearSite } from './linearSites';

export interface StatsOutputs {
  /** The layers whose input this is (layers sharing an input share the reduction). */
  layers: string[];
  channels: number;
  sumAbs: string;
  sumSq: string;
  /** Int64 [rows, channels] of the flattened activation. */
  shape: string;
  gram?: string;
}

/** The activation as [rows, channels], each row one token (or one pixel of a 1×1 conv). */
function asRows(b: GraphBuilder, x: string, layout: ActivationLayout, channels: number): string {
  if (layout === 'first') return b.transpose(x, [1, 0]);
  const last = layout === 'nchw' ? b.transpose(x, [0, 2, 3, 1]) : x;
  return b.reshape(last, [-1, channels]);
}

export function statsGraph(
  sites: LinearSite[],
  opset: number,
  options: { gram: boolean },
): { edits: GraphEdits; outputs: StatsOutputs[] } {
  const b = new GraphBuilder(opset, 'quant_lens_calib');
  const groups = new Map<string, StatsOutputs>();
  const outputs: ValueInfo[] = [];
  for (const site of sites) {
    const key = `${site.graph.activationInput}\u0000${site.layout}\u0000${site.channels}`;
    const existing = groups.get(key);
    if (existing) {
      existing.layers.push(site.layer.name);
      continue;
    }
    const rows = asRows(b, site.graph.activationInput, site.layout, site.channels);
    const o: StatsOutputs = {
      layers: [site.layer.name],
      channels: site.channels,
      sumAbs: b.reduceSum(b.op('Abs', [rows]), [0], false),
      sumSq: b.reduceSum(b.op('Mul', [rows, rows]), [0], false),
      shape: b.op('Shape', [rows]),
    };
    if (options.gram) o.gram = b.op('MatMul', [b.transpose(rows, [1, 0]), rows]);
    groups.set(key, o);
    outputs.push(
      { name: o.sumAbs, elemType: OnnxType.FLOAT, dims: [site.channels] },
      { name: o.sumSq, elemType: OnnxType.FLOAT, dims: [site.channels] },
      { name: o.shape, elemType: OnnxType.INT64, dims: [2] },
    );
    if (o.gram) outputs.push({ name: o.gram, elemType: OnnxType.FLOAT, dims: [site.channels, site.channels] });
  }
  // The reductions go at the end of the graph, where every activation they read is defined.
  return {
    edits: { addInitializers: b.initializers, addOutputs: outputs, appendNodes: b.nodes },
    outputs: [...groups.values()],
  };
}
