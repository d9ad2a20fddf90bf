/**
 * A lazily parsed ONNX ModelProto. Opening a model reads the graph's structure (nodes, attributes,
 * inputs, outputs) and the metadata of every weight (initializers and Constant nodes), recording
 * for each weight the file offset and length of its values instead of loading them. Every
 * top-level field of the model and of the graph is kept as a byte range, so a rewritten model
 * (see rewrite.ts) copies untouched parts verbatim.
 *
 * Field numbers follow onnx/onnx.proto (IR version 10): ModelProto, GraphProto, NodeProto,
 * AttributeProto, ValueInfoProto, TensorProto.
 */
import { dirname } from 'node:path';
import { QuantLensError } from '../errors';
import {
  fieldRange,
  MemorySource,
  ProtoReader,
  valueRange,
  type ByteRange,
  type ByteSource,
  type ProtoField,
} from '../protobuf/reader';
import { RandomAccessFile, WindowedFile, type ByteRangeReader } from '../readers/fileAccess';
import type { TensorSource } from '../readers/tensorSource';
import { ExternalFiles, parseTensor, type OnnxTensor } from './tensor';
import { onnxTensorSource } from './tensorValues';

/** AttributeProto.AttributeType */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  floats?: number[];
  ints?: number[];
  strings?: string[];
  t?: OnnxTensor;
  /** A subgraph (If / Loop / Scan bodies) is not parsed; its bytes are here. */
  g?: ByteRange;
}

export interface OnnxNode {
  /** Position in graph.node; the key for nodes without a name. */
  index: number;
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: OnnxAttribute[];
  /**
   * The node's metadata_props that locate it in the source program (the PyTorch exporter's
   * 'pkg.torch.onnx.name_scopes' and 'namespace'); others are not kept.
   */
  metadata: Record<string, string>;
  /** The whole `node` field of the graph (key and length prefix included), for verbatim copies. */
  field: ByteRange;
}

export interface OnnxValueInfo {
  name: string;
  /** TensorProto.DataType of a tensor-typed value, else null. */
  elemType: number | null;
  /** Dims (numbers, symbolic names, or null for unknown); null for unknown rank. */
  dims: (number | string | null)[] | null;
  field: ByteRange;
}

/** A top-level field of a message, for splicing: which field it is and where its bytes are. */
export interface FieldSpan {
  field: number;
  range: ByteRange;
}

/** Where a graph value that is a weight gets its values. */
export type WeightSource =
  { kind: 'initializer'; tensor: OnnxTensor; index: number } | { kind: 'constant'; tensor: OnnxTensor; node: OnnxNode };

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  /** Initializers, each with the byte range of its `initializer` field in the graph. */
  initializers: { tensor: OnnxTensor; field: ByteRange }[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** The graph's payload in the model file. */
  range: ByteRange;
  /** Every field of GraphProto in file order. */
  fields: FieldSpan[];
  sparseInitializers: number;
}

/** Caps that keep a crafted file from filling memory with tiny nodes or names. */
const MAX_NODES = 1_000_000;
const MAX_NODE_IO = 100_000;
const MAX_ATTR_VALUES = 10_000_000;
const KEPT_NODE_METADATA = new Set(['pkg.torch.onnx.name_scopes', 'namespace']);

function tooMany(r: ProtoReader, what: string): QuantLensError {
  return new QuantLensError('too-large', `${what} has more than ${MAX_NODE_IO} entries`, r.source.path);
}

function parseAttribute(r: ProtoReader, external: ExternalFiles, context: string): OnnxAttribute {
  const a: OnnxAttribute = { name: '', type: 0 };
  for (let f = r.next(); f; f = r.next()) {
    switch (f.field) {
      case 1:
        a.name = r.string(f, 'attribute name');
        break;
      case 20:
        a.type = r.int(f, 'attribute type');
        break;
      case 2:
        a.f = r.float(f, 'f');
        break;
      case 3:
        a.i = r.int(f, 'i');
        break;
      case 4:
        a.s = r.string(f, 's', 16 << 20);
        break;
      case 5:
        a.t = parseTensor(r.message(f, `${context}.t`), external, `${context}.t`);
        break;
      case 6:
        a.g = valueRange(f);
        break;
      case 7:
        r.floats(f, 'floats', (a.floats ??= []), MAX_ATTR_VALUES);
        break;
      case 8:
        r.varints(f, 'ints', (a.ints ??= []), MAX_ATTR_VALUES);
        break;
      case 9:
        if ((a.strings ??= []).length >= MAX_NODE_IO) throw tooMany(r, `${context}.strings`);
        a.strings.push(r.string(f, 'strings'));
        break;
      default:
        break;
    }
  }
  return a;
}

function parseNode(r: ProtoReader, f: ProtoField, index: number, external: ExternalFiles): OnnxNode {
  const node: OnnxNode = {
    index,
    name: '',
    opType: '',
    domain: '',
    inputs: [],
    outputs: [],
    attributes: [],
    metadata: {},
    field: fieldRange(f),
  };
  const context = `graph.node[${index}]`;
  for (let g = r.next(); g; g = r.next()) {
    switch (g.field) {
      case 1:
        if (node.inputs.length >= MAX_NODE_IO) throw tooMany(r, `${context}.input`);
        node.inputs.push(r.string(g, 'input'));
        break;
      case 2:
        if (node.outputs.length >= MAX_NODE_IO) throw tooMany(r, `${context}.output`);
        node.outputs.push(r.string(g, 'output'));
        break;
      case 3:
        node.name = r.string(g, 'name');
        break;
      case 4:
        node.opType = r.string(g, 'op_type');
        break;
      case 7:
        node.domain = r.string(g, 'domain');
        break;
      case 5:
        node.attributes.push(parseAttribute(r.message(g, `${context}.attribute`), external, `${context}.attribute`));
        break;
      case 9: {
        const m = r.message(g, `${context}.metadata_props`);
        let key = '';
        let value: ProtoField | null = null;
        for (let h = m.next(); h; h = m.next()) {
          if (h.field === 1) key = m.string(h, 'key');
          else if (h.field === 2) value = h;
        }
        if (value && KEPT_NODE_METADATA.has(key)) node.metadata[key] = m.string(value, key, 64 << 10);
        break;
      }
      default:
        break;
    }
  }
  return node;
}

function parseValueInfo(r: ProtoReader, f: ProtoField): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: null, dims: null, field: fieldRange(f) };
  for (let g = r.next(); g; g = r.next()) {
    if (g.field === 1) v.name = r.string(g, 'value name');
    else if (g.field === 2) {
      const type = r.message(g, 'type');
      for (let h = type.next(); h; h = type.next()) {
        if (h.field !== 1) continue; // only tensor types carry an element type and shape
        const tt = type.message(h, 'tensor_type');
        for (let k = tt.next(); k; k = tt.next()) {
          if (k.field === 1) v.elemType = tt.int(k, 'elem_type');
          else if (k.field === 2) {
            v.dims = [];
            const shape = tt.message(k, 'shape');
            for (let d = shape.next(); d; d = shape.next()) {
              if (d.field !== 1) continue;
              if (v.dims.length >= 64)
                throw new QuantLensError('malformed', `value "${v.name}" has over 64 dims`, r.source.path);
              const dim = shape.message(d, 'dim');
              let value: number | string | null = null;
              for (let x = dim.next(); x; x = dim.next()) {
                if (x.field === 1) value = dim.int(x, 'dim_value');
                else if (x.field === 2) value = dim.string(x, 'dim_param');
              }
              v.dims.push(value);
            }
          }
        }
      }
    }
  }
  return v;
}

function parseGraph(r: ProtoReader, external: ExternalFiles): OnnxGraph {
  const graph: OnnxGraph = {
    name: '',
    nodes: [],
    initializers: [],
    inputs: [],
    outputs: [],
    range: { offset: r.start, length: r.end - r.start },
    fields: [],
    sparseInitializers: 0,
  };
  for (let f = r.next(); f; f = r.next()) {
    graph.fields.push({ field: f.field, range: fieldRange(f) });
    switch (f.field) {
      case 1:
        if (graph.nodes.length >= MAX_NODES) {
          throw new QuantLensError('too-large', `graph has more than ${MAX_NODES} nodes`, r.source.path);
        }
        graph.nodes.push(parseNode(r.message(f, `graph.node[${graph.nodes.length}]`), f, graph.nodes.length, external));
        break;
      case 2:
        graph.name = r.string(f, 'graph name');
        break;
      case 5: {
        const i = graph.initializers.length;
        if (i >= MAX_NODES)
          throw new QuantLensError('too-large', `graph has more than ${MAX_NODES} initializers`, r.source.path);
        graph.initializers.push({
          tensor: parseTensor(r.message(f, `graph.initializer[${i}]`), external, `graph.initializer[${i}]`),
          field: fieldRange(f),
        });
        break;
      }
      case 11:
        graph.inputs.push(parseValueInfo(r.message(f, 'graph.input'), f));
        break;
      case 12:
        graph.outputs.push(parseValueInfo(r.message(f, 'graph.output'), f));
        break;
      case 15:
        graph.sparseInitializers++;
        break;
      default:
        break; // doc_string, value_info, quantization annotations: kept as bytes in `fields`
    }
  }
  return graph;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export class OnnxModel {
  irVersion = 0;
  producerName = '';
  producerVersion = '';
  domain = '';
  modelVersion = 0;
  opsetImports: OpsetImport[] = [];
  metadataProps: Record<string, string> = {};
  graph: OnnxGraph = {
    name: '',
    nodes: [],
    initializers: [],
    inputs: [],
    outputs: [],
    range: { offset: 0, length: 0 },
    fields: [],
    sparseInitializers: 0,
  };
  /** Every field of ModelProto in file order. */
  fields: FieldSpan[] = [];
  /** Model-local functions (FunctionProto) are not parsed; their count is shown. */
  functions = 0;

  private producers: Map<string, OnnxNode> | undefined;
  private consumerMap: Map<string, OnnxNode[]> | undefined;
  private weights: Map<string, WeightSource> | undefined;
  private readonly externalHandles = new Map<string, Promise<RandomAccessFile>>();

  private constructor(
    /** The model file's path (or a label for an in-memory model). */
    readonly path: string,
    /** Reads byte ranges of the model file: tensor values, verbatim copies. */
    readonly reader: ByteRangeReader,
    readonly external: ExternalFiles,
    private readonly owned: RandomAccessFile | null,
  ) {}

  /** Opens a model file; reads its structure, not its weights. */
  static async open(path: string): Promise<OnnxModel> {
    const file = await RandomAccessFile.open(path);
    try {
      const model = new OnnxModel(path, file, new ExternalFiles(dirname(path), path), file);
      model.parse(new WindowedFile(file));
      return model;
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** A model held in memory (tests, models we built); external data resolves against `folder`. */
  static fromBytes(bytes: Uint8Array, label = '<memory>', folder = '.'): OnnxModel {
    const source = new MemorySource(bytes, label);
    const reader: ByteRangeReader = {
      path: label,
      size: bytes.length,
      read: async (offset, length, what, into) => {
        const bytes = source.bytes(offset, length, what);
        if (!into) return bytes.slice();
        into.set(bytes);
        return into.subarray(0, length);
      },
    };
    const model = new OnnxModel(label, reader, new ExternalFiles(folder, label), null);
    model.parse(source);
    return model;
  }

  private parse(source: ByteSource): void {
    if (source.size === 0) throw new QuantLensError('malformed', 'empty file, not an ONNX model', this.path);
    const r = new ProtoReader(source, 0, source.size, 'model');
    let sawGraph = false;
    for (let f = r.next(); f; f = r.next()) {
      this.fields.push({ field: f.field, range: fieldRange(f) });
      switch (f.field) {
        case 1:
          this.irVersion = r.int(f, 'ir_version');
          break;
        case 2:
          this.producerName = r.string(f, 'producer_name');
          break;
        case 3:
          this.producerVersion = r.string(f, 'producer_version');
          break;
        case 4:
          this.domain = r.string(f, 'domain');
          break;
        case 5:
          this.modelVersion = r.int(f, 'model_version');
          break;
        case 7:
          if (sawGraph) throw new QuantLensError('malformed', 'model has two graphs', this.path);
          sawGraph = true;
          this.graph = parseGraph(r.message(f, 'graph'), this.external);
          break;
        case 8: {
          const o = r.message(f, 'opset_import');
          const op: OpsetImport = { domain: '', version: 0 };
          for (let g = o.next(); g; g = o.next()) {
            if (g.field === 1) op.domain = o.string(g, 'domain');
            else if (g.field === 2) op.version = o.int(g, 'version');
          }
          this.opsetImports.push(op);
          break;
        }
        case 14: {
          const m = r.message(f, 'metadata_props');
          let key = '';
          let value = '';
          for (let g = m.next(); g; g = m.next()) {
            if (g.field === 1) key = m.string(g, 'key');
            else if (g.field === 2) value = m.string(g, 'value');
          }
          this.metadataProps[key] = value;
          break;
        }
        case 25:
          this.functions++;
          break;
        default:
          break;
      }
    }
    if (!sawGraph || this.irVersion <= 0) {
      throw new QuantLensError('malformed', 'not an ONNX model (no ir_version or no graph)', this.path);
    }
  }

  /** The node that produces a value, if a node does (graph inputs and initializers have none). */
  producer(value: string): OnnxNode | undefined {
    if (!this.producers) {
      this.producers = new Map();
      for (const n of this.graph.nodes) for (const o of n.outputs) if (o) this.producers.set(o, n);
    }
    return this.producers.get(value);
  }

  /** The nodes that take a value as an input, in graph order. */
  consumers(value: string): OnnxNode[] {
    if (!this.consumerMap) {
      this.consumerMap = new Map();
      for (const n of this.graph.nodes) {
        for (const i of n.inputs) {
          if (!i) continue;
          let list = this.consumerMap.get(i);
          if (!list) this.consumerMap.set(i, (list = []));
          if (list[list.length - 1] !== n) list.push(n);
        }
      }
    }
    return this.consumerMap.get(value) ?? [];
  }

  /**
   * Every constant tensor of the graph by the value name nodes use: initializers, and Constant
   * nodes whose `value` attribute holds a tensor (paddle2onnx and others keep all weights there).
   */
  weightSources(): Map<string, WeightSource> {
    if (this.weights) return this.weights;
    const map = new Map<string, WeightSource>();
    this.graph.initializers.forEach(({ tensor }, index) => {
      if (map.has(tensor.name)) {
        throw new QuantLensError('malformed', `two initializers are named "${tensor.name}"`, this.path);
      }
      map.set(tensor.name, { kind: 'initializer', tensor, index });
    });
    for (const node of this.graph.nodes) {
      if (node.opType !== 'Constant' || node.domain !== '' || node.outputs.length !== 1) continue;
      const value = node.attributes.find((a) => a.name === 'value' && a.t !== undefined);
      if (!value?.t) continue;
      const name = node.outputs[0]!;
      if (map.has(name)) throw new QuantLensError('malformed', `two weights are named "${name}"`, this.path);
      map.set(name, { kind: 'constant', tensor: value.t, node });
    }
    this.weights = map;
    return map;
  }

  weightSource(value: string): WeightSource | undefined {
    return this.weightSources().get(value);
  }

  /** Decodes a tensor's values to float32 on demand (raw, typed or external data). */
  tensorSource(tensor: OnnxTensor, label = tensor.name): TensorSource | null {
    return onnxTensorSource(tensor, this.reader, (p) => this.openExternal(p), label);
  }

  private openExternal(path: string): Promise<RandomAccessFile> {
    let h = this.externalHandles.get(path);
    if (!h) {
      h = RandomAccessFile.open(path);
      this.externalHandles.set(path, h);
    }
    return h;
  }

  /** A node's attribute by name. */
  static attribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
    return node.attributes.find((a) => a.name === name);
  }

  async close(): Promise<void> {
    const handles = [...this.externalHandles.values()];
    this.externalHandles.clear();
    await Promise.allSettled(handles.map(async (h) => (await h).close()));
    await this.owned?.close();
  }
}
