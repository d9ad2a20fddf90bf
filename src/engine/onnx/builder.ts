/**
 * Builds small ONNX models in memory: the kernel graphs behind our GEMMs and, later, the graph
 * fragments inserted into user models. Field numbers follow onnx/onnx.proto (IR version 8).
 */
import { ProtoWriter } from '../protobuf/writer';

/** onnx TensorProto.DataType values used by Quant Lens. */
export const OnnxType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;
export type OnnxTypeCode = (typeof OnnxType)[keyof typeof OnnxType];

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: OnnxTypeCode;
  /** Omit for a value of unknown rank. */
  dims?: Dim[];
}

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorInit };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface TensorInit {
  name: string;
  elemType: OnnxTypeCode;
  dims: number[];
  /** Little-endian raw bytes of the tensor. */
  raw: Uint8Array;
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: TensorInit[];
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_INTS = 7;

export function writeTensor(w: ProtoWriter, t: TensorInit): void {
  for (const d of t.dims) w.varint(1, d);
  w.varint(2, t.elemType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
}

export function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.varint(1, v.elemType);
      if (v.dims) {
        const dims = v.dims;
        tensorType.message(2, (shape) => {
          for (const d of dims) {
            shape.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)));
          }
        });
      }
    }),
  );
}

function writeAttribute(w: ProtoWriter, name: string, a: AttributeValue): void {
  w.string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value).varint(20, ATTR_FLOAT);
      break;
    case 'int':
      w.varint(3, a.value).varint(20, ATTR_INT);
      break;
    case 'string':
      w.string(4, a.value).varint(20, ATTR_STRING);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value)).varint(20, ATTR_TENSOR);
      break;
    case 'ints':
      for (const v of a.value) w.varint(8, v);
      w.varint(20, ATTR_INTS);
      break;
  }
}

export function writeNode(w: ProtoWriter, n: NodeSpec): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.op);
  if (n.domain) w.string(7, n.domain);
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.message(5, (aw) => writeAttribute(aw, name, a));
}

export function writeGraph(w: ProtoWriter, g: GraphSpec): void {
  for (const n of g.nodes) w.message(1, (nw) => writeNode(nw, n));
  w.string(2, g.name);
  for (const t of g.initializers ?? []) w.message(5, (tw) => writeTensor(tw, t));
  for (const i of g.inputs) w.message(11, (vw) => writeValueInfo(vw, i));
  for (const o of g.outputs) w.message(12, (vw) => writeValueInfo(vw, o));
}

/** A complete ModelProto for the default ONNX domain at the given opset. */
export function buildModel(graph: GraphSpec, opset = 17): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, 8); // ir_version
  w.string(2, 'quant-lens');
  w.message(7, (gw) => writeGraph(gw, graph));
  w.message(8, (ow) => ow.string(1, '').varint(2, opset));
  return w.finish();
}
