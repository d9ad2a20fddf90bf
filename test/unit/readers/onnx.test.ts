import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { buildModel, OnnxType, writeGraph, writeNode, type GraphSpec } from '../../../src/engine/onnx/builder';
import { OnnxModel } from '../../../src/engine/onnx/model';
import { rewriteModel, rewriteModelToFile } from '../../../src/engine/onnx/rewrite';
import { ProtoWriter } from '../../../src/engine/protobuf/writer';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { assertSameValues, fixture, loadReference, rejectsWith, tempDir } from './helpers';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;

test('onnx-ops: every weight storage decodes to onnx’s values; linear layers come from the graph', async () => {
  const path = fixture('onnx-ops/model.onnx');
  const ref = loadReference(fixture('onnx-ops/reference.json'));
  const ckpt = await openCheckpoint(path);
  try {
    assert.equal(ckpt.format, 'onnx');
    assert.equal(ckpt.metadata['onnx.producer'], 'quant-lens fixtures');
    for (const [name, r] of Object.entries(ref.tensors)) assertSameValues(await ckpt.readTensor(name), r, name);
    for (const [name, r] of Object.entries(ref.layers)) {
      const w = await ckpt.readWeight(name);
      assert.deepEqual([w.out, w.in], r.shape, name);
      assertSameValues(w.data, r, name);
    }
    const byName = new Map(ckpt.linearLayers.map((l) => [l.name, l]));
    // 3×3 and depthwise convolutions, and MatMul of two activations, are not linear layers.
    assert.deepEqual([...byName.keys()].sort(), Object.keys(ref.layers).sort());
    assert.deepEqual(byName.get('gemm_t.weight')!.onnx, {
      node: 'gemm_t',
      op: 'Gemm',
      activationInput: 'x',
      weightInput: 'gemm_t.weight',
      weightSource: 'initializer',
      transA: false,
    });
    assert.equal(byName.get('gemm_t.weight')!.storedTransposed, false);
    assert.equal(byName.get('gemm.weight')!.storedTransposed, true);
    assert.equal(byName.get('const.weight')!.onnx!.weightSource, 'constant');
    assert.deepEqual(
      [byName.get('tr.weight')!.storedTransposed, byName.get('tr.weight')!.onnx!.weightInput],
      [false, 'tr.weight_T'],
    );
    assert.deepEqual([byName.get('conv.weight')!.role, byName.get('conv.weight')!.dtype], ['conv1x1', 'FLOAT16']);
    assert.equal(byName.get('ext.weight')!.onnx!.weightSource, 'external');
    assert.match(byName.get('ext.weight')!.file, /weights\.bin$/);
    // The last MatMul feeds the graph output through a Reshape: a head, not quantized by default.
    assert.deepEqual(
      [byName.get('double.weight')!.group, byName.get('double.weight')!.quantizedByDefault],
      ['head', false],
    );
    assert.equal(ckpt.files.length, 2);
  } finally {
    await ckpt.close();
  }
});

test('onnx-llama (torch.onnx.export, external data): layers named by module, grouped by block', async () => {
  const ref = loadReference(fixture('onnx-llama/reference.json'));
  const ckpt = await openCheckpoint(fixture('onnx-llama'));
  try {
    assert.equal(ckpt.family, 'llama');
    for (const [name, r] of Object.entries(ref.tensors)) assertSameValues(await ckpt.readTensor(name), r, name);
    assert.deepEqual(ckpt.linearLayers.map((l) => l.name).sort(), Object.keys(ref.layers).sort());
    for (const [name, r] of Object.entries(ref.layers)) {
      const w = await ckpt.readWeight(name);
      assert.deepEqual([w.out, w.in], r.shape, name);
      assertSameValues(w.data, r, name);
    }
    const q = ckpt.linearLayers.find((l) => l.name === 'm.model.layers.1.self_attn.q_proj.weight')!;
    assert.deepEqual([q.block, q.role, q.storedTransposed, q.onnx!.weightSource], [1, 'q_proj', true, 'external']);
    assert.match(q.tensor!, /^val_\d+$/);
    const head = ckpt.linearLayers.at(-1)!;
    assert.deepEqual([head.name, head.role, head.quantizedByDefault], ['m.lm_head.weight', 'lm_head', false]);
  } finally {
    await ckpt.close();
  }
});

test('the model API lists nodes, producers, consumers and where each weight’s bytes are', async () => {
  const model = await OnnxModel.open(fixture('onnx-ops/model.onnx'));
  try {
    assert.equal(model.irVersion, 8);
    assert.deepEqual(model.opsetImports, [{ domain: '', version: 17 }]);
    const gemm = model.graph.nodes.find((n) => n.name === 'gemm_t')!;
    assert.deepEqual([gemm.opType, gemm.inputs, gemm.outputs], ['Gemm', ['x', 'gemm_t.weight'], ['h1']]);
    assert.equal(OnnxModel.attribute(gemm, 'transB')!.i, 1);
    assert.equal(model.producer('h1'), gemm);
    assert.deepEqual(
      model.consumers('x').map((n) => n.name),
      ['gemm_t', 'matmul_tr', 'matmul_ext'],
    );
    assert.equal(model.producer('x'), undefined);
    const w = model.weightSource('gemm_t.weight')!;
    assert.equal(w.kind, 'initializer');
    assert.equal(w.tensor.data.kind, 'raw');
    if (w.tensor.data.kind === 'raw') {
      const bytes = readFileSync(fixture('onnx-ops/model.onnx')).subarray(
        w.tensor.data.range.offset,
        w.tensor.data.range.offset + w.tensor.data.range.length,
      );
      assert.deepEqual(
        new Float32Array(new Uint8Array(bytes).buffer),
        await model.tensorSource(w.tensor)!.readElements(0, 24),
      );
    }
    const c = model.weightSource('const.weight')!;
    assert.equal(c.kind, 'constant');
    assert.equal(c.kind === 'constant' && c.node.name, 'const');
    assert.equal(model.weightSource('ext.weight')!.tensor.data.kind, 'external');
    assert.equal(model.graph.outputs.map((o) => o.name).join(), 'h5,c3,e4');
    assert.deepEqual(model.graph.inputs[1]!.dims, [1, 4, 5, 5]);
  } finally {
    await model.close();
  }
});

async function run(bytes: Uint8Array, feeds: Record<string, Ort.Tensor>): Promise<Record<string, Ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

test('a rewritten model: untouched bytes copied, outputs added, weights replaced, nodes inserted', async () => {
  const dir = tempDir();
  const path = join(dir, 'model.onnx');
  copyFileSync(fixture('onnx-ops/model.onnx'), path);
  copyFileSync(fixture('onnx-ops/weights.bin'), join(dir, 'weights.bin'));
  const model = await OnnxModel.open(path);
  try {
    assert.deepEqual(await rewriteModel(model, {}), new Uint8Array(readFileSync(path)));
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5),
      [3, 4],
    );
    const img = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 100 }, (_, i) => Math.sin(i)),
      [1, 4, 5, 5],
    );
    // onnxruntime resolves external data against the working directory for in-memory models.
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const before = await run(new Uint8Array(readFileSync(path)), { x, img });
      const zeros = (dims: number[]) => ({
        name: '',
        elemType: OnnxType.FLOAT,
        dims,
        raw: new Uint8Array(dims.reduce((a, b) => a * b, 4)),
      });
      const edited = await rewriteModel(model, {
        addOutputs: [
          { name: 'h2', elemType: OnnxType.FLOAT },
          { name: 'h4', elemType: OnnxType.FLOAT },
          { name: 'h4_copy', elemType: OnnxType.FLOAT },
        ],
        replaceWeights: new Map([
          ['const.weight', zeros([5, 3])], // a Constant node
          ['ext.weight', zeros([4, 7])], // external data replaced inline
        ]),
        insertNodes: [
          { after: 'matmul_tr', node: { op: 'Identity', inputs: ['h4'], outputs: ['h4_copy'], name: 'copy' } },
        ],
      });
      const after = await run(edited, { x, img });
      assert.deepEqual(Object.keys(after).sort(), ['c3', 'e4', 'h2', 'h4', 'h4_copy', 'h5']);
      assert.deepEqual(after.h4!.dims, [3, 3]);
      assert.deepEqual([...after.h4_copy!.data], [...after.h4!.data], 'the inserted Identity copies h4');
      assert.ok(
        [...after.h5!.data].every((v) => v === 0),
        'h5 uses the zeroed Constant',
      );
      assert.ok(
        [...after.e4!.data].every((v) => v === 0),
        'e4 uses the zeroed external weight',
      );
      assert.deepEqual([...after.c3!.data], [...before.c3!.data], 'untouched branch unchanged');
      // The rewritten file reads back with the new values.
      const out = join(dir, 'edited.onnx');
      await rewriteModelToFile(model, { replaceWeights: new Map([['gemm_t.weight', zeros([6, 4])]]) }, out);
      const ckpt = await openCheckpoint(out);
      assert.ok((await ckpt.readTensor('gemm_t.weight')).every((v) => v === 0));
      assert.deepEqual(
        await ckpt.readTensor('gemm.weight'),
        await (await openCheckpoint(path)).readTensor('gemm.weight'),
      );
      await ckpt.close();
    } finally {
      process.chdir(cwd);
    }
    await rejectsWith(
      () => rewriteModel(model, { replaceWeights: new Map([['nope', zeros1()]]) }),
      'bad-argument',
      /no weight named "nope"/,
    );
    await rejectsWith(() => rewriteModelToFile(model, {}, path), 'bad-argument', /cannot replace/);
    await rejectsWith(
      () => rewriteModelToFile(model, {}, join(tempDir(), 'elsewhere.onnx')),
      'bad-argument',
      /external data/,
    );
  } finally {
    await model.close();
  }
});

function zeros1() {
  return { name: '', elemType: OnnxType.FLOAT, dims: [1], raw: new Uint8Array(4) };
}

// --- hostile and damaged models ----------------------------------------------------------------

/** A model whose only initializer is the given TensorProto (written field by field). */
function modelWithTensor(tensor: (w: ProtoWriter) => void): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, 8);
  w.message(7, (g) => {
    g.message(1, (n) => writeNode(n, { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'mm' }));
    g.string(2, 'g');
    g.message(5, tensor);
  });
  w.message(8, (o) => o.string(1, '').varint(2, 17));
  return w.finish();
}

function externalTensor(location: string, offset = 0, length = 16): (w: ProtoWriter) => void {
  return (t) => {
    t.varint(1, 2).varint(1, 2).varint(2, OnnxType.FLOAT).string(8, 'w');
    t.message(13, (e) => e.string(1, 'location').string(2, location));
    t.message(13, (e) => e.string(1, 'offset').string(2, String(offset)));
    t.message(13, (e) => e.string(1, 'length').string(2, String(length)));
    t.varint(14, 1);
  };
}

async function rejectsModel(
  bytes: Uint8Array,
  code: Parameters<typeof rejectsWith>[1],
  message: RegExp,
  dir = tempDir(),
): Promise<void> {
  const path = join(dir, 'model.onnx');
  writeFileSync(path, bytes);
  await rejectsWith(() => openCheckpoint(path), code, message, path);
}

test('external data must stay inside the model’s folder and inside its file', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'w.bin'), new Uint8Array(32));
  const ok = join(dir, 'ok.onnx');
  writeFileSync(ok, modelWithTensor(externalTensor('w.bin', 16)));
  const ckpt = await openCheckpoint(ok);
  assert.deepEqual([...(await ckpt.readWeight('w')).data], [0, 0, 0, 0]);
  await ckpt.close();
  await rejectsModel(modelWithTensor(externalTensor('../w.bin')), 'unsafe', /climbs out/, dir);
  await rejectsModel(modelWithTensor(externalTensor('/etc/passwd')), 'unsafe', /absolute path/, dir);
  await rejectsModel(modelWithTensor(externalTensor('C:\\Windows\\win.ini')), 'unsafe', /absolute path/, dir);
  await rejectsModel(modelWithTensor(externalTensor('missing.bin')), 'not-found', /does not exist/, dir);
  await rejectsModel(modelWithTensor(externalTensor('w.bin', 24)), 'malformed', /run past the end of w\.bin/, dir);
  await rejectsModel(
    modelWithTensor(externalTensor('w.bin', 0, 12)),
    'malformed',
    /need 16 bytes but external data holds 12/,
    dir,
  );
  await rejectsModel(modelWithTensor(externalTensor('w.bin', -5)), 'malformed', /not a byte offset/, dir);
});

test('damaged protobufs fail with a typed error naming the file', async () => {
  const good = buildModel({
    name: 'g',
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [{ name: 'x', elemType: OnnxType.FLOAT, dims: [1, 2] }],
    outputs: [{ name: 'y', elemType: OnnxType.FLOAT }],
    initializers: [{ name: 'w', elemType: OnnxType.FLOAT, dims: [2, 2], raw: new Uint8Array(16) }],
  } satisfies GraphSpec);
  const random = Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24);
  await rejectsModel(random, 'malformed', /protobuf|not an ONNX model/);
  await rejectsModel(new Uint8Array(0), 'malformed', /empty file/);
  for (const cut of [3, 20, good.length - 5])
    await rejectsModel(good.slice(0, cut), 'malformed', /runs past|ends inside|truncated/);
  await rejectsModel(new ProtoWriter().varint(1, 8).string(2, 'no graph').finish(), 'malformed', /no graph/);
  await rejectsModel(Uint8Array.from([0x0b, 0x08, 0x01]), 'malformed', /groups/);
  await rejectsModel(
    Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    'malformed',
    /varint longer than 10 bytes/,
  );
  await rejectsModel(
    Uint8Array.from([0x08, 0x08, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    'malformed',
    /runs past the end/,
  );
  await rejectsModel(
    modelWithTensor((t) =>
      t.varint(1, 2).varint(1, 2).varint(2, OnnxType.FLOAT).string(8, 'w').bytes(9, new Uint8Array(12)),
    ),
    'malformed',
    /need 16 bytes but raw_data has 12/,
  );
  await rejectsModel(
    modelWithTensor((t) => t.varint(1, -3).varint(2, OnnxType.FLOAT).string(8, 'w').bytes(9, new Uint8Array(12))),
    'malformed',
    /not sizes/,
  );
  await rejectsModel(
    modelWithTensor((t) =>
      t
        .varint(1, 2 ** 40)
        .varint(1, 2 ** 40)
        .varint(2, OnnxType.FLOAT)
        .string(8, 'w'),
    ),
    'too-large',
    /absurd/,
  );
  await rejectsModel(
    modelWithTensor((t) =>
      t
        .varint(1, 4)
        .varint(2, OnnxType.FLOAT)
        .string(8, 'x'.repeat(2 << 20)),
    ),
    'too-large',
    /over the 1048576-byte limit/,
  );
  await rejectsModel(
    modelWithTensor((t) => t.varint(1, 4).varint(2, OnnxType.FLOAT).string(8, 'w')),
    'malformed',
    /has 4 elements but no data/,
  );
  const twoGraphs = new ProtoWriter()
    .varint(1, 8)
    .message(7, (g) => writeGraph(g, { name: 'a', nodes: [], inputs: [], outputs: [] }))
    .message(7, (g) => writeGraph(g, { name: 'b', nodes: [], inputs: [], outputs: [] }))
    .finish();
  await rejectsModel(twoGraphs, 'malformed', /two graphs/);
  // Typed data with more values than the dims hold is refused when read.
  const path = join(tempDir(), 'model.onnx');
  writeFileSync(
    path,
    modelWithTensor((t) => t.varint(1, 2).varint(2, OnnxType.INT64).string(8, 'w').packedVarints(7, [1, 2, 3])),
  );
  const ckpt = await openCheckpoint(path);
  await rejectsWith(() => ckpt.readTensor('w'), 'malformed', /more values than its dims/);
  await ckpt.close();
});
