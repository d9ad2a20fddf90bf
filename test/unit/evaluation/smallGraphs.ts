/**
 * Small ONNX models with known weights for the calibration and evaluation tests: a MatMul → Relu →
 * Gemm(transB, bias) → MatMul chain at opset 17, and a 1×1-conv pair at opset 9 (the PP-OCRv4
 * recognizer's opset, where Round, Slice-with-inputs and Pad-with-inputs do not exist yet).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModel, OnnxType, type GraphSpec, type TensorInit } from '../../../src/engine/onnx/builder';
import { mulberry32 as rng } from '../../../src/engine/random';

export { rng };

export function gaussian(n: number, random: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(random(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  }
  return out;
}

export function tensor(name: string, dims: number[], data: Float32Array): TensorInit {
  return { name, elemType: OnnxType.FLOAT, dims, raw: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function writeModel(graph: GraphSpec, opset: number, name = 'model.onnx'): string {
  const dir = mkdtempSync(join(tmpdir(), 'ql-graph-'));
  const path = join(dir, name);
  writeFileSync(path, buildModel(graph, opset));
  return path;
}

export interface ChainWeights {
  w1: Float32Array; // [8, 24]  (MatMul, [in, out])
  w2: Float32Array; // [12, 24] (Gemm transB=1, [out, in])
  b2: Float32Array; // [12]
  w3: Float32Array; // [12, 5]  (MatMul)
}

export function chainModel(seed = 1): { path: string; w: ChainWeights } {
  const r = rng(seed);
  const w: ChainWeights = {
    w1: gaussian(8 * 24, r, 0.4),
    w2: gaussian(12 * 24, r, 0.3),
    b2: gaussian(12, r, 0.1),
    w3: gaussian(12 * 5, r, 0.5),
  };
  const path = writeModel(
    {
      name: 'chain',
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['h'], name: 'mm1' },
        { op: 'Relu', inputs: ['h'], outputs: ['r'] },
        { op: 'Reshape', inputs: ['r', 'flat'], outputs: ['r2'] },
        {
          op: 'Gemm',
          inputs: ['r2', 'w2', 'b2'],
          outputs: ['g'],
          name: 'gemm',
          attributes: { transB: { kind: 'int', value: 1 } },
        },
        { op: 'MatMul', inputs: ['g', 'w3'], outputs: ['y'], name: 'mm3' },
      ],
      inputs: [{ name: 'x', elemType: OnnxType.FLOAT, dims: ['n', 't', 8] }],
      outputs: [{ name: 'y', elemType: OnnxType.FLOAT, dims: ['m', 5] }],
      initializers: [
        tensor('w1', [8, 24], w.w1),
        tensor('w2', [12, 24], w.w2),
        tensor('b2', [12], w.b2),
        tensor('w3', [12, 5], w.w3),
        {
          name: 'flat',
          elemType: OnnxType.INT64,
          dims: [2],
          raw: new Uint8Array(BigInt64Array.from([-1n, 24n]).buffer),
        },
      ],
    },
    17,
  );
  return { path, w };
}

/** Two 1×1 convolutions (4 → 40 → 6 channels) with a Relu between them, opset 9. */
export function convModel(seed = 2): { path: string; c1: Float32Array; c2: Float32Array } {
  const r = rng(seed);
  const c1 = gaussian(40 * 4, r, 0.5);
  const c2 = gaussian(6 * 40, r, 0.2);
  const path = writeModel(
    {
      name: 'convs',
      nodes: [
        { op: 'Conv', inputs: ['x', 'c1'], outputs: ['h'], name: 'conv1' },
        { op: 'Relu', inputs: ['h'], outputs: ['r'] },
        { op: 'Conv', inputs: ['r', 'c2'], outputs: ['y'], name: 'conv2' },
      ],
      inputs: [{ name: 'x', elemType: OnnxType.FLOAT, dims: ['n', 4, 3, 5] }],
      outputs: [{ name: 'y', elemType: OnnxType.FLOAT, dims: ['n', 6, 3, 5] }],
      initializers: [tensor('c1', [40, 4, 1, 1], c1), tensor('c2', [6, 40, 1, 1], c2)],
    },
    9,
  );
  return { path, c1, c2 };
}

/** A graph with no linear layer at all. */
export function reluModel(): string {
  return writeModel(
    {
      name: 'relu',
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', elemType: OnnxType.FLOAT, dims: ['n', 3, 48, 'w'] }],
      outputs: [{ name: 'y', elemType: OnnxType.FLOAT, dims: ['n', 3, 48, 'w'] }],
    },
    17,
  );
}

/** input_ids → Gather(embedding [vocab, 8]) → MatMul → logits [b, t, vocab]. */
/** A tiny causal LM; `batch` fixes its batch dimension (as a model traced at batch 1 has it). */
export function lmModel(vocab: number, batch?: number): string {
  const r = rng(vocab);
  return writeModel(
    {
      name: 'lm',
      nodes: [
        { op: 'Gather', inputs: ['emb', 'input_ids'], outputs: ['h'] },
        { op: 'MatMul', inputs: ['h', 'proj'], outputs: ['h2'], name: 'proj' },
        { op: 'MatMul', inputs: ['h2', 'head'], outputs: ['logits'], name: 'lm_head' },
      ],
      inputs: [{ name: 'input_ids', elemType: OnnxType.INT64, dims: [batch ?? 'batch', 'sequence'] }],
      outputs: [{ name: 'logits', elemType: OnnxType.FLOAT, dims: [batch ?? 'batch', 'sequence', vocab] }],
      initializers: [
        tensor('emb', [vocab, 8], gaussian(vocab * 8, r)),
        tensor('proj', [8, 8], gaussian(64, r)),
        tensor('head', [8, vocab], gaussian(8 * vocab, r)),
      ],
    },
    17,
  );
}
