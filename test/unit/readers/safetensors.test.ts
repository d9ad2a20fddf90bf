import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import {
  bf16Tensor,
  f32Tensor,
  rawSafetensorsBytes,
  safetensorsBytes,
  writeSafetensors,
} from '../../helpers/safetensorsWriter';
import { assertSameValues, fixture, loadReference, rejectsWith, tempDir } from './helpers';

test('every safetensors dtype decodes to the float32 values torch gives', async () => {
  const path = fixture('safetensors/all-dtypes.safetensors');
  const ref = loadReference(fixture('safetensors/reference.json'));
  const ckpt = await openCheckpoint(path);
  try {
    assert.equal(ckpt.format, 'safetensors');
    assert.equal(ckpt.metadata.format, 'pt');
    assert.equal(ckpt.metadata.producer, 'make_safetensors_dtypes.py');
    assert.deepEqual(ckpt.tensors.map((t) => t.name).sort(), Object.keys(ref.tensors).sort());
    for (const [name, r] of Object.entries(ref.tensors)) {
      const info = ckpt.tensors.find((t) => t.name === name)!;
      assert.deepEqual(info.shape, r.shape, name);
      assertSameValues(await ckpt.readTensor(name), r, name);
    }
    // Zero-size, 0-d and 1-D tensors are listed but are not linear layers.
    assert.deepEqual(
      ckpt.linearLayers.map((l) => l.name),
      ['model.layers.0.self_attn.q_proj.weight'],
    );
    assert.equal((await ckpt.readTensor('empty')).length, 0);
  } finally {
    await ckpt.close();
  }
});

test('a sharded BF16 Llama checkpoint opens through its index, its folder, and shard by shard', async () => {
  const ref = loadReference(fixture('llama-sharded/reference.json'));
  for (const path of [fixture('llama-sharded/model.safetensors.index.json'), fixture('llama-sharded')]) {
    const ckpt = await openCheckpoint(path);
    try {
      assert.equal(ckpt.format, 'safetensors');
      assert.equal(ckpt.architecture, 'LlamaForCausalLM');
      assert.equal(ckpt.family, 'llama');
      assert.equal(ckpt.files.length, 4);
      assert.equal(ckpt.metadata['config.hidden_size'], '64');
      assert.ok(ckpt.metadata['index.total_size']);
      assert.equal(ckpt.tensors.length, Object.keys(ref.tensors).length);
      for (const [name, r] of Object.entries(ref.tensors)) assertSameValues(await ckpt.readTensor(name), r, name);
      for (const [name, r] of Object.entries(ref.layers)) {
        const w = await ckpt.readWeight(name);
        assert.deepEqual([w.out, w.in], r.shape, name);
        assertSameValues(w.data, r, name);
        assert.deepEqual(w.nonFinite, { nan: 0, inf: 0 });
      }
      const layer = ckpt.linearLayers.find((l) => l.name === 'model.layers.1.mlp.down_proj.weight')!;
      assert.deepEqual(layer.shape, [64, 128]);
      assert.equal(layer.dtype, 'BF16');
      assert.equal(layer.block, 1);
      assert.match(layer.file, /model-0000\d-of-00004\.safetensors$/);
    } finally {
      await ckpt.close();
    }
  }
  const shard = await openCheckpoint(fixture('llama-sharded/model-00002-of-00004.safetensors'));
  assert.ok(shard.tensors.length > 0 && shard.tensors.length < Object.keys(ref.tensors).length);
  await shard.close();
});

test('GPT-2 Conv1D weights, stored [in, out], are read as [out, in]', async () => {
  const ref = loadReference(fixture('gpt2/reference.json'));
  const ckpt = await openCheckpoint(fixture('gpt2/model.safetensors'));
  try {
    assert.equal(ckpt.family, 'gpt2');
    const cAttn = ckpt.linearLayers.find((l) => l.name === 'transformer.h.0.attn.c_attn.weight')!;
    assert.equal(cAttn.storedTransposed, true);
    assert.deepEqual(cAttn.shape, [96, 32]);
    assert.equal(cAttn.role, 'qkv_proj');
    const fc2 = ckpt.linearLayers.find((l) => l.name === 'transformer.h.1.mlp.c_proj.weight')!;
    assert.deepEqual([fc2.role, fc2.shape], ['fc2', [32, 128]]);
    for (const [name, r] of Object.entries(ref.layers)) {
      const w = await ckpt.readWeight(name);
      assert.deepEqual([w.out, w.in], r.shape, name);
      assertSameValues(w.data, r, name);
    }
  } finally {
    await ckpt.close();
  }
});

test('NaN and Inf values are allowed and reported per layer', async () => {
  const dir = tempDir();
  const path = join(dir, 'model.safetensors');
  writeSafetensors(path, [
    f32Tensor('model.layers.0.self_attn.q_proj.weight', [2, 3], [1, NaN, 2, Infinity, -Infinity, NaN]),
    f32Tensor('model.layers.0.self_attn.k_proj.weight', [2, 3], [1, 2, 3, 4, 5, 6]),
  ]);
  const ckpt = await openCheckpoint(path);
  assert.deepEqual((await ckpt.readWeight('model.layers.0.self_attn.q_proj.weight')).nonFinite, { nan: 2, inf: 2 });
  assert.deepEqual((await ckpt.readWeight('model.layers.0.self_attn.k_proj.weight')).nonFinite, { nan: 0, inf: 0 });
  // An analysis, which counts them in its own pass, can skip the reader's count.
  const uncounted = await ckpt.readWeight('model.layers.0.self_attn.q_proj.weight', undefined, {
    countNonFinite: false,
  });
  assert.equal(uncounted.nonFinite, undefined);
  assert.deepEqual(Array.from(uncounted.data), [1, NaN, 2, Infinity, -Infinity, NaN]);
  await ckpt.close();
});

test('sub-byte F6 tensors are listed, sized in bits, and refused with a clear message', async () => {
  const dir = tempDir();
  const path = join(dir, 'f6.safetensors');
  // 8 elements × 6 bits = 6 bytes; 4 × 4 bits of F4 = 2 bytes.
  const header = JSON.stringify({
    'model.layers.0.mlp.up_proj.weight': { dtype: 'F6_E2M3', shape: [2, 4], data_offsets: [0, 6] },
    f4: { dtype: 'F4', shape: [4], data_offsets: [6, 8] },
  });
  writeFileSync(path, rawSafetensorsBytes(header, Uint8Array.from([1, 2, 3, 4, 5, 6, 0x21, 0xf7])));
  const ckpt = await openCheckpoint(path);
  assert.equal(ckpt.tensors.find((t) => t.name === 'model.layers.0.mlp.up_proj.weight')!.byteLength, 6);
  await rejectsWith(
    () => ckpt.readTensor('model.layers.0.mlp.up_proj.weight'),
    'unsupported',
    /F6_E2M3.*not decoded/,
    path,
  );
  assert.deepEqual([...(await ckpt.readTensor('f4'))], [0.5, 1, 6, -6]);
  await ckpt.close();
});

/** Writes a damaged file and checks the error names it and says what is wrong. */
async function rejectsFile(bytes: Uint8Array, code: Parameters<typeof rejectsWith>[1], message: RegExp): Promise<void> {
  const path = join(tempDir(), 'bad.safetensors');
  writeFileSync(path, bytes);
  await rejectsWith(() => openCheckpoint(path), code, message, path);
}

const okHeader = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...over });

test('damaged safetensors files fail with a typed error naming the file', async () => {
  const good = safetensorsBytes([f32Tensor('a', [2, 2], [1, 2, 3, 4])]);
  await rejectsFile(good.slice(0, 5), 'malformed', /too short/);
  await rejectsFile(good.slice(0, good.length - 3), 'malformed', /run past|truncated/);
  await rejectsFile(
    rawSafetensorsBytes(okHeader(), new Uint8Array(8), 5000n),
    'malformed',
    /header length 5000 runs past/,
  );
  await rejectsFile(rawSafetensorsBytes(okHeader(), new Uint8Array(8), 2n ** 63n), 'too-large', /exceeds/);
  await rejectsFile(rawSafetensorsBytes(okHeader(), new Uint8Array(8), 2n ** 64n - 1n), 'too-large', /exceeds/);
  await rejectsFile(rawSafetensorsBytes('{not json', new Uint8Array(0)), 'malformed', /not valid JSON/);
  await rejectsFile(rawSafetensorsBytes('[1, 2]', new Uint8Array(0)), 'malformed', /not a JSON object/);
  await rejectsFile(rawSafetensorsBytes('{"a": 5}', new Uint8Array(0)), 'malformed', /entry is not an object/);
  await rejectsFile(
    rawSafetensorsBytes(
      '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
      new Uint8Array(8),
    ),
    'malformed',
    /duplicate tensor name "a"/,
  );
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }), new Uint8Array(8)),
    'malformed',
    /run past/,
  );
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }), new Uint8Array(12)),
    'malformed',
    /overlaps/,
  );
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }), new Uint8Array(16)),
    'malformed',
    /belong to no tensor/,
  );
  await rejectsFile(rawSafetensorsBytes(okHeader(), new Uint8Array(12)), 'malformed', /trailing bytes/);
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), new Uint8Array(8)),
    'malformed',
    /needs 12 bytes but data_offsets span 8/,
  );
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ a: { dtype: 'F13', shape: [2], data_offsets: [0, 8] } }), new Uint8Array(8)),
    'unsupported',
    /unknown dtype "F13"/,
  );
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }), new Uint8Array(8)),
    'malformed',
    /non-negative integers/,
  );
  await rejectsFile(
    rawSafetensorsBytes(
      okHeader({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }),
      new Uint8Array(8),
    ),
    'malformed',
    /needs/,
  );
  await rejectsFile(
    rawSafetensorsBytes(okHeader({ __metadata__: { n: 5 } }), new Uint8Array(8)),
    'malformed',
    /__metadata__/,
  );
});

function shardedFolder(weightMap: Record<string, string>): string {
  const dir = tempDir();
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [
    f32Tensor('model.layers.0.self_attn.q_proj.weight', [2, 2], [1, 2, 3, 4]),
  ]);
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [
    f32Tensor('lm_head.weight', [3, 2], [1, 2, 3, 4, 5, 6]),
  ]);
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 40 }, weight_map: weightMap }),
  );
  return dir;
}

const goodMap = {
  'model.layers.0.self_attn.q_proj.weight': 'model-00001-of-00002.safetensors',
  'lm_head.weight': 'model-00002-of-00002.safetensors',
};

test('shard indexes that name missing files or leave the folder are refused', async () => {
  const ok = shardedFolder(goodMap);
  const ckpt = await openCheckpoint(ok);
  assert.deepEqual(
    ckpt.linearLayers.map((l) => [l.name, l.quantizedByDefault]),
    [
      ['model.layers.0.self_attn.q_proj.weight', true],
      ['lm_head.weight', false],
    ],
  );
  await ckpt.close();

  const index = (dir: string) => join(dir, 'model.safetensors.index.json');
  let dir = shardedFolder({ ...goodMap, 'lm_head.weight': 'model-00003-of-00002.safetensors' });
  await rejectsWith(() => openCheckpoint(dir), 'not-found', /does not exist/, index(dir));
  dir = shardedFolder({ ...goodMap, 'lm_head.weight': '../model-00002-of-00002.safetensors' });
  await rejectsWith(() => openCheckpoint(dir), 'unsafe', /climbs out/, index(dir));
  dir = shardedFolder({ ...goodMap, 'lm_head.weight': '/etc/passwd' });
  await rejectsWith(() => openCheckpoint(dir), 'unsafe', /absolute path/, index(dir));
  dir = shardedFolder({ ...goodMap, 'lm_head.weight': 'sub/../../x.safetensors' });
  await rejectsWith(() => openCheckpoint(dir), 'unsafe', /climbs out/, index(dir));

  // A symbolic link inside the folder that leads out of it.
  dir = shardedFolder({ ...goodMap, 'lm_head.weight': 'link.safetensors' });
  const outside = tempDir();
  copyFileSync(join(dir, 'model-00002-of-00002.safetensors'), join(outside, 'elsewhere.safetensors'));
  symlinkSync(join(outside, 'elsewhere.safetensors'), join(dir, 'link.safetensors'));
  await rejectsWith(() => openCheckpoint(dir), 'unsafe', /link that leads outside/, index(dir));
  // A link that stays inside is fine.
  dir = shardedFolder({ ...goodMap, 'lm_head.weight': 'sub/inner.safetensors' });
  mkdirSync(join(dir, 'sub'));
  symlinkSync(join(dir, 'model-00002-of-00002.safetensors'), join(dir, 'sub', 'inner.safetensors'));
  await (await openCheckpoint(dir)).close();

  dir = shardedFolder({ ...goodMap, 'lm_head.weight': 'model-00001-of-00002.safetensors' });
  await rejectsWith(
    () => openCheckpoint(dir),
    'malformed',
    /puts "lm_head.weight" in model-00001-of-00002.safetensors but that shard has no such tensor/,
    index(dir),
  );
  dir = shardedFolder({
    'model.layers.0.self_attn.q_proj.weight': 'model-00001-of-00002.safetensors',
    x: 'model-00001-of-00002.safetensors',
  });
  await rejectsWith(() => openCheckpoint(dir), 'malformed', /no such tensor/, index(dir));

  dir = tempDir();
  writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": [1]}');
  await rejectsWith(() => openCheckpoint(dir), 'malformed', /weight_map/, index(dir));
  writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": {');
  await rejectsWith(() => openCheckpoint(dir), 'malformed', /not valid JSON/, index(dir));
});

test('a tensor in two shards is refused', async () => {
  const dir = shardedFolder(goodMap);
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [
    f32Tensor('lm_head.weight', [3, 2], [1, 2, 3, 4, 5, 6]),
    f32Tensor('model.layers.0.self_attn.q_proj.weight', [2, 2], [1, 2, 3, 4]),
  ]);
  await rejectsWith(() => openCheckpoint(dir), 'malformed', /in two shards/);
});

test('layers larger than one read chunk (8 MB) come back whole, their non-finite values counted across chunks', async () => {
  // 4608×2048 values: 36 MB as F32 (five chunks read in place, several at once), 18 MB as BF16
  // after a 2 MB F32 tensor, so the BF16 chunks start at an offset that is not a chunk multiple.
  const rows = 4608;
  const cols = 2048;
  const values = Float32Array.from({ length: rows * cols }, (_, i) => ((i * 7919) % 10007) / 10007 - 0.5);
  // One NaN or infinity in the first, third, fourth and last chunk.
  const chunk = (8 << 20) / 4;
  const odd: [number, number][] = [
    [5, NaN],
    [2 * chunk + 17, Infinity],
    [3 * chunk + 1, NaN],
    [rows * cols - 3, -Infinity],
  ];
  for (const [i, v] of odd) values[i] = v;
  const dir = tempDir();
  const path = join(dir, 'big.safetensors');
  writeSafetensors(path, [
    f32Tensor('model.layers.0.mlp.up_proj.weight', [rows, cols], values),
    f32Tensor('model.layers.0.mlp.small.weight', [512, 1024], values.subarray(0, 512 * 1024)),
    bf16Tensor('model.layers.0.mlp.down_proj.weight', [rows, cols], values),
  ]);
  const ckpt = await openCheckpoint(path);
  try {
    const f32 = await ckpt.readWeight('model.layers.0.mlp.up_proj.weight');
    assert.deepEqual([f32.out, f32.in], [rows, cols]);
    assert.ok(
      f32.data.every((v, i) => Object.is(v, values[i])),
      'F32 values equal',
    );
    assert.deepEqual(f32.nonFinite, { nan: 2, inf: 2 });
    const bf16 = await ckpt.readWeight('model.layers.0.mlp.down_proj.weight');
    // bfloat16 keeps 8 significant bits: within half a unit in the last place.
    assert.ok(
      bf16.data.every((v, i) =>
        Number.isFinite(values[i]!)
          ? Math.abs(v - values[i]!) <= Math.abs(values[i]!) * 2 ** -8
          : Object.is(v, values[i]),
      ),
      'BF16 values equal to bfloat16 precision',
    );
    assert.deepEqual(bf16.nonFinite, { nan: 2, inf: 2 });
    // A slice through the middle of the second chunk.
    const part = await ckpt.readTensor('model.layers.0.mlp.small.weight');
    assert.ok(part.every((v, i) => Object.is(v, values[i])));
  } finally {
    await ckpt.close();
  }
});
