/**
 * ONNX models as a Checkpoint. Weights are every initializer and every Constant node's tensor
 * (some exporters keep all weights in Constants); linear layers come from the graph (MatMul and
 * Gemm with a constant operand, 1×1 Conv) with their orientation, node and activation input.
 */
import { dirname } from 'node:path';
import type { Checkpoint, CheckpointReader, LinearLayer, OnnxLinearSite, TensorInfo } from './checkpoint';
import { analyseName, compareLayers, detectFamily, discoverLinearLayers } from './discovery';
import { configMetadata, readHfConfig } from './hfConfig';
import { TableCheckpoint, type StoredTensor } from './tableCheckpoint';
import { findLinearLayers, type OnnxLinear } from '../onnx/linear';
import { OnnxModel, type WeightSource } from '../onnx/model';
import { onnxTypeName } from '../onnx/dataTypes';
import { storedByteLength } from '../onnx/tensor';

function tensorInfo(model: OnnxModel, name: string, w: WeightSource): TensorInfo {
  const t = w.tensor;
  const data = t.data;
  return {
    name,
    dtype: onnxTypeName(t.dataType),
    shape: t.dims,
    file: data.kind === 'external' ? data.path : model.path,
    byteLength: storedByteLength(t),
    ...(data.kind === 'raw' || data.kind === 'packed' ? { offset: data.range.offset } : {}),
    ...(data.kind === 'external' ? { offset: data.offset } : {}),
    decodable: t.undecodable === undefined ? true : { reason: t.undecodable },
  };
}

/** Node names from exporters look like "/model/layers.0/self_attn/q_proj/MatMul": drop the op. */
function nodeBase(name: string): string {
  return name.replace(/[/._](MatMul|Gemm|Conv)(_\d+)?$/i, '');
}

function site(l: OnnxLinear): OnnxLinearSite {
  return {
    node: l.node.name || `#${l.node.index}`,
    op: l.op,
    activationInput: l.activationInput,
    weightInput: l.weightInput,
    weightSource: l.source.tensor.data.kind === 'external' ? 'external' : l.source.kind,
    ...(l.op === 'Gemm' ? { transA: l.transA } : {}),
  };
}

/**
 * The module a node came from, when the exporter recorded it: the PyTorch dynamo exporter keeps
 * ['', 'm', 'm.model', …, 'm.model.layers.0.self_attn.q_proj', 'linear'] in the node's metadata.
 */
function modulePath(l: OnnxLinear): string | null {
  const scopes = l.node.metadata['pkg.torch.onnx.name_scopes'];
  if (!scopes) return null;
  let best: string | null = null;
  for (const m of scopes.matchAll(/'([^']*)'/g))
    if (m[1]!.includes('.') && m[1]!.length > (best?.length ?? 0)) best = m[1]!;
  return best;
}

function toLayer(l: OnnxLinear, info: TensorInfo, taken: Set<string>): LinearLayer {
  let name = l.weightName;
  let a = analyseName(l.weightName);
  if (a.role === 'linear') {
    // Anonymous weights (val_88, onnx::MatMul_123): the module path or node name tells the role.
    const module = modulePath(l);
    const fromModule = module ? analyseName(module) : null;
    const fromNode = l.node.name ? analyseName(nodeBase(l.node.name)) : null;
    if (module && fromModule && !taken.has(`${module}.weight`)) {
      a = fromModule;
      name = `${module}.weight`;
    } else if (fromNode && (fromNode.role !== 'linear' || fromNode.block !== null)) a = fromNode;
  }
  const conv = l.op === 'Conv';
  const head = l.isHead && (a.role === 'linear' || a.group === 'head');
  const role = conv && a.role === 'linear' ? 'conv1x1' : head && a.role === 'linear' ? 'classifier' : a.role;
  return {
    name,
    ...(name !== l.weightName ? { tensor: l.weightName } : {}),
    shape: l.shape,
    storedTransposed: l.storedTransposed,
    block: a.block,
    role,
    group: head ? 'head' : conv && a.group === 'other' ? 'conv' : a.group,
    quantizedByDefault: !head && a.quantizedByDefault,
    dtype: info.dtype,
    file: info.file,
    onnx: site(l),
  };
}

export async function openOnnx(path: string): Promise<Checkpoint> {
  const model = await OnnxModel.open(path);
  try {
    const tensors: StoredTensor[] = [];
    const infos = new Map<string, TensorInfo>();
    for (const [name, w] of model.weightSources()) {
      const info = tensorInfo(model, name, w);
      infos.set(name, info);
      tensors.push({ info, source: model.tensorSource(w.tensor, name) });
    }
    const warnings: string[] = [];
    const layers: LinearLayer[] = [];
    const seen = new Set<string>();
    const taken = new Set(infos.keys());
    for (const l of findLinearLayers(model)) {
      // A weight shared by several nodes (tied embeddings) is one layer, keyed by the first use.
      if (seen.has(l.weightName)) continue;
      seen.add(l.weightName);
      const layer = toLayer(l, infos.get(l.weightName)!, taken);
      taken.add(layer.name);
      layers.push(layer);
    }
    const config = await readHfConfig(dirname(path));
    const architecture = config?.architecture ?? config?.modelType ?? null;
    let family = detectFamily(architecture, [
      ...infos.keys(),
      ...layers.map((l) => l.name),
      ...model.graph.nodes.map((n) => n.name.replace(/\//g, '.')),
    ]);
    if (layers.length === 0 && infos.size > 0) {
      // No MatMul/Gemm/Conv uses a constant directly (quantized or unusual graphs): fall back to names.
      const r = discoverLinearLayers([...infos.values()], { architecture, config });
      family = r.family;
      layers.push(...r.layers.sort(compareLayers));
      if (layers.length) warnings.push('no MatMul, Gemm or 1×1 Conv uses a constant weight; layers were found by name');
    }
    if (model.graph.sparseInitializers)
      warnings.push(`${model.graph.sparseInitializers} sparse initializers are not read`);
    const metadata: Record<string, string> = {
      'onnx.ir_version': String(model.irVersion),
      'onnx.producer': `${model.producerName} ${model.producerVersion}`.trim(),
      'onnx.opsets': model.opsetImports.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(', '),
      'onnx.nodes': String(model.graph.nodes.length),
      'onnx.initializers': String(model.graph.initializers.length),
      'onnx.constants': String(infos.size - model.graph.initializers.length),
      ...Object.fromEntries(Object.entries(model.metadataProps).map(([k, v]) => [`onnx.meta.${k}`, v])),
      ...configMetadata(config),
    };
    const files = new Map<string, number>([[path, model.reader.size]]);
    for (const w of model.weightSources().values()) {
      if (w.tensor.data.kind === 'external' && !files.has(w.tensor.data.path)) {
        files.set(w.tensor.data.path, model.external.resolve(w.tensor.data.location).size);
      }
    }
    return new TableCheckpoint({
      format: 'onnx',
      path,
      files: [...files].map(([p, size]) => ({ path: p, size })),
      metadata,
      architecture,
      family,
      tensors,
      linearLayers: layers,
      warnings,
      close: () => model.close(),
    });
  } catch (e) {
    await model.close();
    throw e;
  }
}

export const onnxReader: CheckpointReader = {
  id: 'onnx',
  format: 'onnx',
  label: 'ONNX',
  fileNames: ['*.onnx'],
  editor: 'option',
  inFolder: { preferred: 'model.onnx', any: ['*.onnx'], what: 'ONNX' },
  // A ModelProto starts with ir_version (field 1, varint) in every exporter we know.
  sniff: (b) => b.length >= 2 && b[0] === 0x08 && b[1]! > 0 && b[1]! < 0x20,
  open: openOnnx,
};
