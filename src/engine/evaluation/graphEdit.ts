/**
 * Writes an edited copy of an ONNX model: what `onnx/rewrite.ts` does (extra outputs, replaced
 * weights, inserted nodes, new initializers) plus the two edits evaluation needs and that module
 * does not offer: rewiring an existing node's inputs or outputs (to route a linear layer through an
 * activation quantizer and a low-rank branch), and extra graph inputs (token labels for in-graph
 * NLL). Untouched fields are copied byte for byte, so a large model is never decoded.
 *
 * A rewired node is re-encoded from its original bytes with only its input/output fields replaced;
 * attributes, names and metadata are copied verbatim whatever they hold.
 */
import { QuantLensError } from '../errors';
import { MemorySource, ProtoReader, type ByteRange } from '../protobuf/reader';
import { ProtoWriter } from '../protobuf/writer';
import {
  writeNode,
  writeTensor,
  writeValueInfo,
  type NodeSpec,
  type TensorInit,
  type ValueInfo,
} from '../onnx/builder';
import type { OnnxModel } from '../onnx/model';
import { assemblePieces, encoded, withGraph, writePiecesToFile, type Piece } from '../onnx/pieces';

export interface GraphEdits {
  addOutputs?: ValueInfo[];
  addInputs?: ValueInfo[];
  /** New tensors for weights, keyed by the value name nodes use (initializer name or Constant output). */
  replaceWeights?: Map<string, TensorInit>;
  /** Nodes to insert before (`before`) or after (`after`) the node with that index in graph.node. */
  insertNodes?: { before?: number; after?: number; node: NodeSpec }[];
  /** Nodes to add after the graph's last node (they may read any value of the graph). */
  appendNodes?: NodeSpec[];
  addInitializers?: TensorInit[];
  /** New input / output lists for existing nodes, by node index. */
  rewire?: Map<number, { inputs?: string[]; outputs?: string[] }>;
}

/** A NodeProto field re-encoded with new inputs/outputs; every other field is copied as it was. */
async function rewiredNode(
  model: OnnxModel,
  range: ByteRange,
  change: { inputs?: string[]; outputs?: string[] },
): Promise<Uint8Array> {
  const bytes = await model.reader.read(range.offset, range.length, 'node');
  const outer = new ProtoReader(new MemorySource(bytes, model.path), 0, bytes.length, 'node');
  const f = outer.next();
  if (!f) throw new QuantLensError('malformed', 'empty node field', model.path);
  const r = new ProtoReader(outer.source, f.valueStart, f.valueStart + f.valueLength, 'node');
  const w = new ProtoWriter();
  let inputs: string[] = [];
  let outputs: string[] = [];
  const rest: Uint8Array[] = [];
  for (let g = r.next(); g; g = r.next()) {
    if (g.field === 1) inputs.push(r.string(g, 'input'));
    else if (g.field === 2) outputs.push(r.string(g, 'output'));
    else rest.push(bytes.subarray(g.start, g.end));
  }
  if (change.inputs) inputs = change.inputs;
  if (change.outputs) outputs = change.outputs;
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  for (const b of rest) w.raw(b);
  return encoded((o) => o.bytes(1, w.finish()));
}

async function planEdits(model: OnnxModel, edits: GraphEdits): Promise<Piece[]> {
  const replace = edits.replaceWeights ?? new Map<string, TensorInit>();
  const sources = model.weightSources();
  for (const name of replace.keys()) {
    if (!sources.has(name))
      throw new QuantLensError('bad-argument', `no weight named "${name}" to replace`, model.path);
  }
  const nodeCount = model.graph.nodes.length;
  const before = new Map<number, NodeSpec[]>();
  const after = new Map<number, NodeSpec[]>();
  for (const ins of edits.insertNodes ?? []) {
    const [map, index] = ins.before !== undefined ? [before, ins.before] : [after, ins.after ?? -1];
    if (!Number.isInteger(index) || index < 0 || index >= nodeCount) {
      throw new QuantLensError('bad-argument', `no node #${index} to insert next to`, model.path);
    }
    let list = map.get(index);
    if (!list) map.set(index, (list = []));
    list.push(ins.node);
  }
  const nodeField = (n: NodeSpec) => encoded((w) => w.message(1, (nw) => writeNode(nw, n)));
  const tensorField = (t: TensorInit) => encoded((w) => w.message(5, (tw) => writeTensor(tw, t)));
  const valueField = (field: number, v: ValueInfo) => encoded((w) => w.message(field, (vw) => writeValueInfo(vw, v)));

  const graph: Piece[] = [];
  const fields = model.graph.fields;
  const lastIndexOf = (field: number) => fields.map((f) => f.field).lastIndexOf(field);
  const lastInit = lastIndexOf(5);
  const lastInput = lastIndexOf(11);
  const lastOutput = lastIndexOf(12);
  let nodeIndex = 0;
  let initIndex = 0;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.field === 1) {
      const node = model.graph.nodes[nodeIndex]!;
      for (const n of before.get(nodeIndex) ?? []) graph.push(nodeField(n));
      const constantName = node.opType === 'Constant' ? node.outputs[0] : undefined;
      const replacement = constantName !== undefined ? replace.get(constantName) : undefined;
      const change = edits.rewire?.get(nodeIndex);
      if (replacement && sources.get(constantName!)?.kind === 'constant') {
        graph.push(
          nodeField({
            op: 'Constant',
            inputs: [],
            outputs: node.outputs,
            ...(node.name ? { name: node.name } : {}),
            attributes: { value: { kind: 'tensor', value: { ...replacement, name: constantName! } } },
          }),
        );
      } else if (change) graph.push(await rewiredNode(model, f.range, change));
      else graph.push(f.range);
      for (const n of after.get(nodeIndex) ?? []) graph.push(nodeField(n));
      if (nodeIndex === nodeCount - 1) for (const n of edits.appendNodes ?? []) graph.push(nodeField(n));
      nodeIndex++;
    } else if (f.field === 5) {
      const name = model.graph.initializers[initIndex]!.tensor.name;
      const replacement = replace.get(name);
      graph.push(replacement ? tensorField({ ...replacement, name }) : f.range);
      initIndex++;
    } else graph.push(f.range);
    const last = i === fields.length - 1;
    if (last && nodeCount === 0) for (const n of edits.appendNodes ?? []) graph.push(nodeField(n));
    if (i === lastInit || (lastInit < 0 && last))
      for (const t of edits.addInitializers ?? []) graph.push(tensorField(t));
    if (i === lastInput || (lastInput < 0 && last))
      for (const v of edits.addInputs ?? []) graph.push(valueField(11, v));
    if (i === lastOutput || (lastOutput < 0 && last))
      for (const v of edits.addOutputs ?? []) graph.push(valueField(12, v));
  }

  return withGraph(model, graph);
}

/** The edited model in memory. */
export async function editModel(model: OnnxModel, edits: GraphEdits): Promise<Uint8Array> {
  return assemblePieces(model, await planEdits(model, edits));
}

/** Streams the edited model to a file, copying untouched bytes a chunk at a time. */
export async function editModelToFile(model: OnnxModel, edits: GraphEdits, outPath: string): Promise<void> {
  await writePiecesToFile(model, await planEdits(model, edits), outPath);
}
