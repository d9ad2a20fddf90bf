import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { ggufBytes, kvString, kvStringArray, kvU32 } from './ggufBytes';
import { assertSameValues, fixture, loadReference, rejectsWith, tempDir, type ValueReference } from './helpers';

test('a GGUF written to the spec: every supported type dequantizes to gguf-py’s values', async () => {
  const path = fixture('gguf/spec-v3.gguf');
  const ref = loadReference(fixture('gguf/reference.json'));
  const ckpt = await openCheckpoint(path);
  try {
    assert.equal(ckpt.format, 'gguf');
    assert.equal(ckpt.architecture, 'llama');
    assert.equal(ckpt.metadata['gguf.version'], '3');
    assert.equal(ckpt.metadata['general.name'], 'quant-lens spec fixture');
    assert.equal(ckpt.metadata['test.i64'], String(-(2 ** 40)));
    assert.equal(ckpt.metadata['test.bool'], 'true');
    assert.match(ckpt.metadata['tokenizer.ggml.tokens']!, /^\[16 × string: tok0, tok1, .*…\]$/);
    for (const [name, r] of Object.entries(ref.tensors)) {
      const info = ckpt.tensors.find((t) => t.name === name)!;
      assert.deepEqual(info.shape, r.shape, name);
      assert.deepEqual(info.storedDims, [...r.shape].reverse(), name);
      assertSameValues(await ckpt.readTensor(name), r, `${name} (${info.dtype})`);
    }
    // Linear layers in [out, in]: ggml's ne = [in, out] reversed.
    for (const [name, r] of Object.entries(ref.layers)) {
      const w = await ckpt.readWeight(name);
      assert.deepEqual([w.out, w.in], r.shape);
      assertSameValues(w.data, r, name);
    }
    const roles = ckpt.linearLayers.filter((l) => l.block === 1).map((l) => l.role);
    assert.deepEqual(roles, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    assert.equal(ckpt.linearLayers.find((l) => l.name === 'output.weight')!.role, 'lm_head');
    assert.equal(ckpt.linearLayers.find((l) => l.name === 'token_embd.weight')!.quantizedByDefault, false);
    // Types we only list are refused for analysis, saying which types are supported.
    const iq2 = ckpt.tensors.find((t) => t.name === 'blk.2.attn_output.weight')!;
    assert.equal(iq2.dtype, 'IQ2_XXS');
    await rejectsWith(
      () => ckpt.readWeight('blk.2.attn_output.weight'),
      'unsupported',
      /IQ2_XXS is listed but not dequantized.*Q4_K/,
      path,
    );
  } finally {
    await ckpt.close();
  }
});

test('a GGUF from gguf-py’s writer: stacked experts become one layer per expert', async () => {
  const ref = JSON.parse(readFileSync(fixture('gguf/writer-reference.json'), 'utf8')) as {
    experts: ValueReference[];
    attn_q: ValueReference;
    router: ValueReference;
  };
  const ckpt = await openCheckpoint(fixture('gguf/writer-v3.gguf'));
  try {
    assert.equal(ckpt.architecture, 'qwen2moe');
    const experts = ckpt.linearLayers.filter((l) => l.tensor === 'blk.0.ffn_gate_exps.weight');
    assert.deepEqual(
      experts.map((l) => [l.name, l.expert, l.shape, l.group, l.role]),
      [0, 1, 2, 3].map((e) => [`blk.0.ffn_gate_exps.weight[${e}]`, e, [8, 64], 'expert', 'gate_proj']),
    );
    for (const [e, r] of ref.experts.entries())
      assertSameValues((await ckpt.readWeight(experts[e]!.name)).data, r, `expert ${e}`);
    assertSameValues((await ckpt.readWeight('blk.0.attn_q.weight')).data, ref.attn_q, 'attn_q');
    const router = ckpt.linearLayers.find((l) => l.name === 'blk.0.ffn_gate_inp.weight')!;
    assert.deepEqual([router.role, router.quantizedByDefault], ['router', false]);
  } finally {
    await ckpt.close();
  }
});

async function rejectsGguf(bytes: Uint8Array, code: Parameters<typeof rejectsWith>[1], message: RegExp): Promise<void> {
  const path = join(tempDir(), 'bad.gguf');
  writeFileSync(path, bytes);
  await rejectsWith(() => openCheckpoint(path), code, message, path);
}

const f32 = (name: string, offset = 0n, dims = [4n, 2n]) => ({ name, dims, type: 0, offset });

test('damaged and hostile GGUF headers fail with a typed error naming the file', async () => {
  const data = new Uint8Array(64);
  await rejectsGguf(ggufBytes({ magic: 0x46554746, tensors: [f32('a')], data }), 'malformed', /bad magic/);
  await rejectsGguf(ggufBytes({ version: 1, tensors: [f32('a')], data }), 'unsupported', /version 1/);
  await rejectsGguf(ggufBytes({ version: 4, tensors: [f32('a')], data }), 'unsupported', /version 4/);
  await rejectsGguf(ggufBytes({ version: 0x03000000, tensors: [f32('a')], data }), 'unsupported', /big-endian/);
  await rejectsGguf(
    ggufBytes({ tensorCount: 2n ** 64n - 1n, tensors: [f32('a')], data }),
    'malformed',
    /tensor count is 18446744073709551615/,
  );
  await rejectsGguf(ggufBytes({ kvCount: 2n ** 63n, tensors: [f32('a')], data }), 'malformed', /metadata count/);
  await rejectsGguf(
    ggufBytes({ kv: [kvStringArray('tokens', ['a', 'b'], 2n ** 62n)], tensors: [f32('a')], data }),
    'malformed',
    /length is 4611686018427387904/,
  );
  const hugeString = ggufBytes({ kv: [kvString('k', 'v')], tensors: [] });
  new DataView(hugeString.buffer).setBigUint64(24, 2n ** 60n, true); // the key's length
  await rejectsGguf(hugeString, 'malformed', /beyond any file|metadata key of/);
  await rejectsGguf(ggufBytes({ tensors: [f32('a')], data }).slice(0, 40), 'malformed', /truncated/);
  await rejectsGguf(ggufBytes({ tensors: [f32('a', 0n, [4n, 1000n])], data }), 'malformed', /run past the end/);
  await rejectsGguf(ggufBytes({ tensors: [f32('a', 8n)], data }), 'malformed', /not a multiple of the alignment 32/);
  await rejectsGguf(ggufBytes({ tensors: [f32('a'), f32('b', 0n)], data }), 'malformed', /overlaps/);
  await rejectsGguf(ggufBytes({ tensors: [f32('a'), f32('a', 32n)], data }), 'malformed', /duplicate tensor name "a"/);
  await rejectsGguf(
    ggufBytes({ tensors: [{ name: 'q', dims: [30n, 1n], type: 8, offset: 0n }], data }),
    'malformed',
    /not a multiple of the Q8_0 block size 32/,
  );
  await rejectsGguf(
    ggufBytes({ tensors: [{ name: 'a', dims: [1n, 1n, 1n, 1n, 1n], type: 0, offset: 0n }], data }),
    'malformed',
    /5 dims/,
  );
  await rejectsGguf(ggufBytes({ tensors: [f32('a', 0n, [2n ** 40n, 2n ** 40n])], data }), 'too-large', /absurd/);
  await rejectsGguf(
    ggufBytes({ kv: [kvU32('general.alignment', 24)], tensors: [f32('a')], data }),
    'malformed',
    /power of two/,
  );
  await rejectsGguf(
    ggufBytes({ kv: [new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0x6b, 99, 0, 0, 0])], tensors: [] }),
    'malformed',
    /unknown value type 99/,
  );
});

test('GGUF version 2 reads like version 3', async () => {
  const path = join(tempDir(), 'v2.gguf');
  writeFileSync(
    path,
    ggufBytes({
      version: 2,
      tensors: [f32('blk.0.ffn_up.weight')],
      data: new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]).buffer),
    }),
  );
  const ckpt = await openCheckpoint(path);
  assert.equal(ckpt.metadata['gguf.version'], '2');
  const w = await ckpt.readWeight('blk.0.ffn_up.weight');
  assert.deepEqual([w.out, w.in, [...w.data]], [2, 4, [1, 2, 3, 4, 5, 6, 7, 8]]);
  await ckpt.close();
});

test('unknown ggml types are listed but refused for analysis', async () => {
  const path = join(tempDir(), 'unknown.gguf');
  writeFileSync(
    path,
    ggufBytes({
      tensors: [f32('blk.0.attn_q.weight'), { name: 'blk.0.attn_k.weight', dims: [4n, 2n], type: 77, offset: 32n }],
      data: new Uint8Array(64),
    }),
  );
  const ckpt = await openCheckpoint(path);
  assert.match(ckpt.warnings!.join(), /1 tensors have a ggml type/);
  await rejectsWith(() => ckpt.readTensor('blk.0.attn_k.weight'), 'unsupported', /unknown ggml type 77/);
  assert.deepEqual([...(await ckpt.readTensor('blk.0.attn_q.weight'))], new Array(8).fill(0));
  await ckpt.close();
});
