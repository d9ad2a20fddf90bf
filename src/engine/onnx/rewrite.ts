/**
 * Re-emits an ONNX model with edits: extra graph outputs (activations for calibration), replaced
 * weights (fake-quantized or reconstructed), inserted nodes and new initializers. Everything not
 * edited is copied byte for byte from the original file, so a 2 GB model is rewritten without
 * being decoded, and written to disk as a stream of pieces.
 *
 * Usage:
 *   const model = await OnnxModel.open(path);
 *   const layer = ckpt.linearLayers[0].onnx!;            // from openCheckpoint(path)
 *   await rewriteModelToFile(model, {
 *     addOutputs: [{ name: layer.activationInput, elemType: OnnxType.FLOAT }],
 *     replaceWeights: new Map([[weightName, { name: weightName, elemType: OnnxType.FLOAT, dims, raw }]]),
 *   }, join(dirname(path), 'model.calib.onnx'));
 *
 * Models with external data must be written into the original's folder: their tensors keep
 * naming the data files by relative path.
 */
import { dirname, resolve } from 'node:path';
import { QuantLensError } from '../errors';
import { writeNode, writeTensor, writeValueInfo, type NodeSpec, type TensorInit, type ValueInfo } from './builder';
import type { OnnxModel } from './model';
import { assemblePieces, encoded, withGraph, writePiecesToFile, type Piece } from './pieces';

export interface OnnxEdits {
  /** Values to add as graph outputs, e.g. a linear layer's activation input. */
  addOutputs?: ValueInfo[];
  /** New tensors for weights, keyed by the value name nodes use (initializer name or Constant output). */
  replaceWeights?: Map<string, TensorInit>;
  /**
   * Nodes to insert right after an existing node (its name, or its index in graph.node); `null`
   * inserts before the first node. Inserted nodes must only use values defined before them.
   */
  insertNodes?: { after: string | number | null; node: NodeSpec }[];
  /** Initializers to append (for inserted nodes' constant inputs). */
  addInitializers?: TensorInit[];
}

export type { Piece };

/** Plans the rewritten model as pieces; nothing is read from the model file yet. */
export function planRewrite(model: OnnxModel, edits: OnnxEdits): Piece[] {
  const replace = new Map(edits.replaceWeights ?? []);
  const sources = model.weightSources();
  for (const name of replace.keys()) {
    if (!sources.has(name))
      throw new QuantLensError('bad-argument', `no weight named "${name}" to replace`, model.path);
  }
  const inserts = new Map<string, NodeSpec[]>();
  const byName = new Map(model.graph.nodes.filter((n) => n.name).map((n) => [n.name, n.index]));
  for (const { after, node } of edits.insertNodes ?? []) {
    let key = 'start';
    if (after !== null) {
      const index = typeof after === 'number' ? after : byName.get(after);
      if (index === undefined || index < 0 || index >= model.graph.nodes.length) {
        throw new QuantLensError('bad-argument', `no node ${JSON.stringify(after)} to insert after`, model.path);
      }
      key = String(index);
    }
    let list = inserts.get(key);
    if (!list) inserts.set(key, (list = []));
    list.push(node);
  }
  const nodeField = (n: NodeSpec) => encoded((w) => w.message(1, (nw) => writeNode(nw, n)));
  const tensorField = (field: number, t: TensorInit) => encoded((w) => w.message(field, (tw) => writeTensor(tw, t)));

  const graph: Piece[] = [];
  const fields = model.graph.fields;
  const lastOf = (field: number) => fields.map((f) => f.field).lastIndexOf(field);
  const lastInit = lastOf(5);
  const lastOutput = lastOf(12);
  let nodeIndex = 0;
  let initIndex = 0;
  fields.forEach((f, i) => {
    if (f.field === 1) {
      if (nodeIndex === 0) for (const n of inserts.get('start') ?? []) graph.push(nodeField(n));
      const node = model.graph.nodes[nodeIndex]!;
      const replacement = node.opType === 'Constant' ? replace.get(node.outputs[0] ?? '') : undefined;
      if (replacement && sources.get(node.outputs[0]!)?.kind === 'constant') {
        graph.push(
          nodeField({
            op: 'Constant',
            inputs: [],
            outputs: node.outputs,
            ...(node.name ? { name: node.name } : {}),
            attributes: {
              value: { kind: 'tensor', value: { ...replacement, name: replacement.name || node.outputs[0]! } },
            },
          }),
        );
      } else graph.push(f.range);
      for (const n of inserts.get(String(nodeIndex)) ?? []) graph.push(nodeField(n));
      nodeIndex++;
    } else if (f.field === 5) {
      const name = model.graph.initializers[initIndex]!.tensor.name;
      const replacement = replace.get(name);
      graph.push(replacement ? tensorField(5, { ...replacement, name }) : f.range);
      initIndex++;
    } else graph.push(f.range);
    if (i === lastInit || (lastInit < 0 && i === fields.length - 1)) {
      for (const t of edits.addInitializers ?? []) graph.push(tensorField(5, t));
    }
    if (i === lastOutput || (lastOutput < 0 && i === fields.length - 1)) {
      for (const o of edits.addOutputs ?? []) graph.push(encoded((w) => w.message(12, (vw) => writeValueInfo(vw, o))));
    }
  });
  if (nodeIndex === 0) for (const n of inserts.get('start') ?? []) graph.push(nodeField(n));

  return withGraph(model, graph);
}

/** The rewritten model in memory (for models that fit; onnxruntime takes the bytes directly). */
export async function rewriteModel(model: OnnxModel, edits: OnnxEdits): Promise<Uint8Array> {
  return assemblePieces(model, planRewrite(model, edits));
}

/** Streams the rewritten model to `outPath`, copying untouched bytes a chunk at a time. */
export async function rewriteModelToFile(model: OnnxModel, edits: OnnxEdits, outPath: string): Promise<void> {
  if (resolve(outPath) === resolve(model.path)) {
    throw new QuantLensError('bad-argument', 'the rewritten model cannot replace the model it is read from', outPath);
  }
  const external = [...model.weightSources().values()].some((w) => w.tensor.data.kind === 'external');
  if (external && resolve(dirname(outPath)) !== resolve(model.external.folder)) {
    throw new QuantLensError(
      'bad-argument',
      'the model keeps weights in external data files named by relative paths; write the rewritten model into its folder',
      outPath,
    );
  }
  await writePiecesToFile(model, planRewrite(model, edits), outPath);
}
