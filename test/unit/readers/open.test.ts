import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { layersCommand } from '../../../src/cli/commands/layers';
import { MemorySource, ProtoReader } from '../../../src/engine/protobuf/reader';
import { ProtoWriter } from '../../../src/engine/protobuf/writer';
import { openCheckpoint, sniff } from '../../../src/engine/readers/open';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { fixture, rejectsWith, tempDir } from './helpers';

test('formats are told by name, by first bytes, and inside folders', async () => {
  const dir = tempDir();
  // Names that say nothing: the first bytes decide.
  for (const [src, name, format] of [
    [fixture('gguf/spec-v3.gguf'), 'weights.dat', 'gguf'],
    [fixture('torch/odd.pt'), 'checkpoint', 'pytorch'],
    [fixture('safetensors/all-dtypes.safetensors'), 'blob', 'safetensors'],
    [fixture('onnx-ops/model.onnx'), 'graph', 'onnx'],
  ] as const) {
    mkdirSync(join(dir, name + '.d'));
    const path = join(dir, name + '.d', name);
    copyFileSync(src, path);
    if (format === 'onnx') copyFileSync(fixture('onnx-ops/weights.bin'), join(dir, name + '.d', 'weights.bin'));
    const ckpt = await openCheckpoint(path);
    assert.equal(ckpt.format, format, name);
    await ckpt.close();
  }
  assert.equal(sniff(new TextEncoder().encode('hello world')), null);
  const unknown = join(dir, 'notes.txt');
  writeFileSync(unknown, 'hello world');
  await rejectsWith(() => openCheckpoint(unknown), 'unsupported', /not a checkpoint format/, unknown);
  await rejectsWith(() => openCheckpoint(join(dir, 'missing.safetensors')), 'not-found', /cannot open/);
  const empty = tempDir();
  await rejectsWith(() => openCheckpoint(empty), 'unsupported', /holds no checkpoint/, empty);
  const two = tempDir();
  writeSafetensors(join(two, 'a.safetensors'), [f32Tensor('x', [1], [1])]);
  writeSafetensors(join(two, 'b.safetensors'), [f32Tensor('x', [1], [1])]);
  await rejectsWith(
    () => openCheckpoint(two),
    'bad-argument',
    /2 \.safetensors files \(a\.safetensors, b\.safetensors\) and no index/,
    two,
  );
  for (const [folder, format] of [
    ['gpt2', 'safetensors'],
    ['torch', 'pytorch'],
    ['torch-sharded', 'pytorch'],
    ['onnx-llama', 'onnx'],
    ['tfjs', 'tfjs'],
  ] as const) {
    const ckpt = await openCheckpoint(fixture(folder));
    assert.equal(ckpt.format, format, folder);
    await ckpt.close();
  }
});

test('a stacked expert tensor is read one expert at a time', async () => {
  const path = join(tempDir(), 'model.safetensors');
  const values = Float32Array.from({ length: 3 * 4 * 2 }, (_, i) => i);
  writeSafetensors(path, [f32Tensor('model.layers.0.mlp.experts.down_proj', [3, 4, 2], values)]);
  const ckpt = await openCheckpoint(path);
  const expert2 = await ckpt.readWeight('model.layers.0.mlp.experts.down_proj[2]');
  assert.deepEqual([expert2.out, expert2.in, [...expert2.data]], [4, 2, [16, 17, 18, 19, 20, 21, 22, 23]]);
  await ckpt.close();
});

test('reads can be cancelled, and unknown names are refused', async () => {
  const ckpt = await openCheckpoint(fixture('gpt2/model.safetensors'));
  const controller = new AbortController();
  controller.abort();
  await rejectsWith(() => ckpt.readWeight('transformer.h.0.attn.c_attn.weight', controller.signal), 'cancelled');
  await rejectsWith(() => ckpt.readTensor('nope'), 'bad-argument', /no tensor named "nope"/);
  await rejectsWith(() => ckpt.readWeight('transformer.ln_f.weight'), 'bad-argument', /not a linear layer/);
  await ckpt.close();
});

async function cli(...argv: string[]): Promise<string> {
  let text = '';
  const sink = { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream;
  assert.equal(await layersCommand(argv, sink), 0);
  return text;
}

test('quant-lens layers lists [out, in] shapes, dtype and file for every format', async () => {
  const cases: [string, RegExp][] = [
    [
      fixture('llama-sharded'),
      /model\.layers\.1\.mlp\.down_proj\.weight\s+64×128\s+BF16\s+down_proj\s+yes\s+\[out,in\]\s+\S*model-0000\d-of-00004\.safetensors/,
    ],
    [fixture('gpt2'), /transformer\.h\.0\.attn\.c_attn\.weight\s+96×32\s+F32\s+qkv_proj\s+yes\s+\[in,out\]/],
    [fixture('torch/pytorch_model.bin'), /model\.layers\.0\.self_attn\.k_proj\.weight\s+32×64\s+float16\s+k_proj/],
    [fixture('torch-sharded'), /pytorch_model-0000\d-of-00002\.bin/],
    [
      fixture('onnx-llama/model.onnx'),
      /m\.model\.layers\.0\.mlp\.up_proj\.weight\s+64×32\s+FLOAT\s+up_proj\s+yes\s+\[in,out\]\s+\S*model\.onnx\.data/,
    ],
    [fixture('gguf/spec-v3.gguf'), /blk\.1\.attn_output\.weight\s+8×256\s+Q4_K\s+o_proj/],
    [fixture('tfjs/model.json'), /conv\/Conv2D\/ReadVariableOp\s+5×3\s+float16→float32\s+conv1x1/],
  ];
  for (const [path, line] of cases) {
    const text = await cli(path);
    assert.match(text, line, text);
    assert.match(text, /^(safetensors|pytorch|onnx|gguf|tfjs) checkpoint /);
  }
  const grouped = await cli(fixture('llama-sharded'));
  assert.match(grouped, /block 0\n\s+model\.layers\.0\.self_attn\.q_proj/);
  assert.doesNotMatch(grouped, /lm_head/);
  assert.match(await cli(fixture('llama-sharded'), '--all'), /lm_head\.weight\s+128×64\s+BF16\s+lm_head\s+no/);
  const json = JSON.parse(await cli(fixture('onnx-ops/model.onnx'), '--json', '--all', '--check')) as {
    format: string;
    layers: {
      name: string;
      shape: number[];
      onnx?: { activationInput: string };
      check: { nan: number; inf: number };
    }[];
  };
  assert.equal(json.format, 'onnx');
  const gemm = json.layers.find((l) => l.name === 'gemm_t.weight')!;
  assert.deepEqual([gemm.shape, gemm.onnx!.activationInput, gemm.check], [[6, 4], 'x', { nan: 0, inf: 0 }]);
  const checked = await cli(fixture('safetensors/all-dtypes.safetensors'), '--check', '--metadata', '--tensors');
  assert.match(checked, /format: pt/);
  assert.match(checked, /q_proj\.weight\s+6×4\s+BF16.*finite/);
  assert.match(checked, /f8_e5m2\s+\[4, 4\]\s+F8_E5M2\s+16/);
});

test('the protobuf reader checks every length against its message', () => {
  const bytes = new ProtoWriter()
    .varint(1, 300)
    .string(2, 'name')
    .message(3, (m) => m.varint(1, -1))
    .float(4, 1.5)
    .finish();
  const r = new ProtoReader(new MemorySource(bytes));
  const f1 = r.next()!;
  assert.deepEqual([f1.field, f1.varint], [1, 300]);
  assert.equal(r.string(r.next()!, 'name'), 'name');
  const sub = r.message(r.next()!, 'sub');
  assert.equal(sub.next()!.varint, -1);
  assert.equal(r.float(r.next()!, 'f'), 1.5);
  assert.equal(r.next(), null);
  // A nested message cannot claim bytes past its parent.
  const lying = Uint8Array.from([0x1a, 0x03, 0x0a, 0x05, 0x61]);
  const outer = new ProtoReader(new MemorySource(lying));
  const inner = outer.message(outer.next()!, 'inner');
  assert.throws(() => inner.next(), /runs past the end of the inner/);
  assert.throws(
    () =>
      new ProtoReader(new MemorySource(Uint8Array.from([0x08, 0x01]))).string(
        { field: 1, wire: 0, start: 0, end: 2, valueStart: 1, valueLength: 1, varint: 1 },
        'x',
      ),
    /wire type 0, expected 2/,
  );
  assert.throws(
    () => new ProtoReader(new MemorySource(Uint8Array.from([0x00, 0x01]))).next(),
    /invalid field number 0/,
  );
  assert.throws(() => new ProtoReader(new MemorySource(Uint8Array.from([0x0f]))).next(), /invalid wire type 7/);
});
