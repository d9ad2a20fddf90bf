/**
 * The linear layers of an ONNX model with both of their identities: the checkpoint's layer (its
 * name keys the statistics file and the analyses; readWeight gives [out, in]) and the graph's view
 * (the node, the activation it multiplies, the weight value to replace).
 */
import { QuantLensError } from '../errors';
import type { Checkpoint, LinearLayer } from '../readers/checkpoint';
import { openCheckpoint } from '../readers/open';
import { findLinearLayers, type OnnxLinear } from '../onnx/linear';
import { OnnxModel } from '../onnx/model';

/** Where a layer's input features sit in its activation tensor. */
export type ActivationLayout = 'last' | 'nchw' | 'first';

export interface LinearSite {
  layer: LinearLayer;
  graph: OnnxLinear;
  /** Input features (the statistics' length). */
  channels: number;
  layout: ActivationLayout;
}

export interface OnnxLinearModel {
  model: OnnxModel;
  checkpoint: Checkpoint;
  sites: LinearSite[];
  opset: number;
  close(): Promise<void>;
}

export async function openOnnxLinearModel(path: string): Promise<OnnxLinearModel> {
  if (!/\.onnx$/i.test(path)) throw new QuantLensError('bad-argument', 'is not an .onnx model', path);
  const model = await OnnxModel.open(path);
  let checkpoint: Checkpoint | undefined;
  try {
    checkpoint = await openCheckpoint(path);
    const byWeight = new Map<string, LinearLayer>();
    for (const l of checkpoint.linearLayers) byWeight.set(l.tensor ?? l.name, l);
    const sites: LinearSite[] = [];
    const seen = new Set<string>();
    for (const g of findLinearLayers(model)) {
      const layer = byWeight.get(g.weightName);
      if (!layer || seen.has(g.weightName)) continue; // a shared weight is calibrated at its first use
      seen.add(g.weightName);
      sites.push({
        layer,
        graph: g,
        channels: g.shape[1],
        layout: g.op === 'Conv' ? 'nchw' : g.transA ? 'first' : 'last',
      });
    }
    const opset = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
    const ck = checkpoint;
    return {
      model,
      checkpoint: ck,
      sites,
      opset,
      close: async () => {
        await ck.close();
        await model.close();
      },
    };
  } catch (e) {
    await checkpoint?.close();
    await model.close();
    throw e;
  }
}

export interface LayerSelection {
  /** Include layers the papers leave in float (classifier heads, lm_head, embeddings). */
  all?: boolean;
  /** Keep only layers whose name matches. */
  pattern?: RegExp;
}

export function selectSites(sites: LinearSite[], s: LayerSelection, path: string): LinearSite[] {
  if (sites.length === 0) {
    throw new QuantLensError(
      'bad-argument',
      'has no linear layers (MatMul or Gemm with a constant weight, or 1×1 Conv)',
      path,
    );
  }
  const chosen = sites.filter(
    (x) => (s.all || x.layer.quantizedByDefault) && (!s.pattern || s.pattern.test(x.layer.name)),
  );
  if (chosen.length === 0) {
    throw new QuantLensError(
      'bad-argument',
      `none of its ${sites.length} linear layers is selected${s.pattern ? ` by /${s.pattern.source}/` : ''}`,
      path,
    );
  }
  return chosen;
}
